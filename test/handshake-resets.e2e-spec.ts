import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';
import { signTestToken, TEST_AUDIENCE, TEST_ISSUER } from './support/tokens.js';
import { WsTestClient } from './support/ws-test-client.js';

const SECRET = 'handshake-resets-secret-long-enough-for-hs256';

const token = (sub: string, regions: string[]) => signTestToken(SECRET, sub, { regions });

function upgradeRequest(path: string, bearer: string | undefined): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${Buffer.from(randomUUID().slice(0, 16)).toString('base64')}`,
    'Sec-WebSocket-Protocol: geo-ws.v1',
    ...(bearer ? [`Authorization: Bearer ${bearer}`] : []),
    '',
    '',
  ].join('\r\n');
}

/** When the client drops the connection during a handshake. */
type Stage = 'partial-request' | 'right-after-request' | 'during-authentication' | 'after-response' | 'clean-close';
const STAGES: Stage[] = ['partial-request', 'right-after-request', 'during-authentication', 'after-response', 'clean-close'];

/** One handshake that the client abandons at `stage`; resolves once the socket is gone. */
function abandonedHandshake(port: number, request: string, stage: Stage): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.once('connect', () => {
      switch (stage) {
        case 'partial-request':
          socket.write(request.slice(0, Math.floor(request.length / 2)));
          setImmediate(() => socket.resetAndDestroy());
          return;
        case 'right-after-request':
          socket.write(request);
          socket.resetAndDestroy();
          return;
        case 'during-authentication':
          socket.write(request);
          setTimeout(() => socket.resetAndDestroy(), Math.random() * 3);
          return;
        case 'after-response':
          socket.write(request);
          socket.once('data', () => socket.resetAndDestroy());
          setTimeout(() => socket.resetAndDestroy(), 2000);
          return;
        case 'clean-close':
          socket.write(request);
          socket.end();
          setTimeout(() => socket.destroy(), 2000);
          return;
      }
    });
  });
}

/**
 * A client that drops its TCP connection at any point of the WebSocket handshake (by
 * accident, or thousands of times on purpose) must not take the region process down, and
 * a client already connected must not notice.
 */
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
const transports: [string, Record<string, string>][] = [
  ['memory', { GEO_TRANSPORT: 'memory' }],
  // Accepted handshakes load a session from the broker: resets land while that is in flight.
  ['redis', { GEO_TRANSPORT: 'redis', GEO_REDIS_URL: redisUrl }],
];

describe.each(transports)('handshake resets on %s: a region process survives clients dropping mid-handshake', (transport, env) => {
  let region: RegionProcess;
  let bystander: WsTestClient;
  const room = `lobby-${randomUUID().slice(0, 6)}`;
  const namespace = testNamespace(`resets${transport}`);

  beforeAll(async () => {
    const port = await freePort();
    region = await new RegionProcess('eu', port, {
      ...env,
      GEO_NAMESPACE: namespace,
      GEO_REGIONS: `eu=http://127.0.0.1:${port},us=http://127.0.0.1:1`,
      GEO_AUTH: 'jwt',
      GEO_JWT_SECRET: SECRET,
      GEO_JWT_ISSUER: TEST_ISSUER,
      GEO_JWT_AUDIENCE: TEST_AUDIENCE,
    }).start();
    bystander = await WsTestClient.connect(region.wsUrl, { token: await token('bystander', ['eu']) });
    await bystander.join(room);
  }, 30_000);

  afterAll(async () => {
    bystander?.close();
    await region?.stop();
    if (transport === 'redis') await dropRedisNamespace(redisUrl, namespace);
  });

  it('survives 1,250 handshakes reset at every stage, for every kind of refusal and for accepted ones', async () => {
    const tokens: [string, string, string | undefined][] = [
      ['no token', '/ws', undefined],
      ['bad token', '/ws', 'not-a-jwt'],
      ['valid token', '/ws', await token('mallory', ['eu'])],
      ['wrong path', '/not-the-ws-path', await token('mallory', ['eu'])],
      ['token for another region', '/ws', await token('mallory', ['us'])],
    ];
    const perCase = 50;
    let attempts = 0;
    for (const [, path, bearer] of tokens) {
      for (const stage of STAGES) {
        const request = upgradeRequest(path, bearer);
        // 50 at a time, as a burst of clients would.
        for (let batch = 0; batch < perCase; batch += 50) {
          await Promise.all(Array.from({ length: 50 }, () => abandonedHandshake(region.port, request, stage)));
          attempts += 50;
        }
        expect({ stage, path, exitCode: region.exitCode }).toEqual({ stage, path, exitCode: undefined });
      }
    }
    expect(attempts).toBe(1250);
    expect(region.exitCode).toBeUndefined();
    expect((await fetch(`${region.url}/readyz`)).status).toBe(200);
    // The bystander's connection saw nothing of it and still works.
    expect(bystander.isOpen).toBe(true);
    expect(bystander.frames.filter((frame) => frame.event === 'geo.error')).toEqual([]);
    const ack = await bystander.publish('chat.message', room, { text: 'still here' });
    expect(ack.seq).toBe(1);
    await bystander.waitForEvents(room, 1);
  }, 120_000);
});
