import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { request as httpRequest } from 'node:http';
import { SignJWT } from 'jose';
import { GeoMemoryNetwork, memoryTransport } from '@geo-ws/nest';
import { startRegion } from '../apps/chat/src/bootstrap.js';
import { DEMO_SECRET, readRegionConfig } from '../apps/chat/src/config.js';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';
import { handshakeOutcome } from './support/tokens.js';
import { WsTestClient } from './support/ws-test-client.js';

/** A POST to `/demo/token` from the local address `from` (127.0.0.0/8 all reach the loopback). */
function postToken(baseUrl: string, name: unknown, from = '127.0.0.1'): Promise<{ status: number; body: any; retryAfter?: string }> {
  const body = JSON.stringify({ name });
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${baseUrl}/demo/token`,
      {
        method: 'POST',
        localAddress: from,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: text ? JSON.parse(text) : undefined,
            retryAfter: response.headers['retry-after'],
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const handshake = handshakeOutcome;

/** A token signed with the demo's public secret, as anyone who read the source could make. */
function selfSigned(sub: string, lifetimeSec: number): Promise<string> {
  return new SignJWT({ rooms: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer('geo-ws-demo')
    .setAudience('geo-ws-chat')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSec)
    .sign(new TextEncoder().encode(DEMO_SECRET));
}

/** Issue 9, item 6: the sample app is safe to start as it is. */
describe('sample chat app: secure by default (demo authority, /demo/token, origins)', () => {
  const apps: INestApplication[] = [];
  const ports: number[] = [];
  let bystander: WsTestClient;
  const http = (i = 0) => `http://127.0.0.1:${ports[i]}`;
  const ws = (i = 0) => `ws://127.0.0.1:${ports[i]}/ws`;

  beforeAll(async () => {
    ports.push(await freePort(), await freePort());
    const env = { GEO_REGIONS: `eu=http://127.0.0.1:${ports[0]},us=http://127.0.0.1:${ports[1]}`, GEO_QUIET: '1', GEO_DRAIN_GRACE_MS: '0' };
    const network = new GeoMemoryNetwork({ delayMs: 0 });
    for (const region of ['eu', 'us'])
      apps.push(await startRegion(readRegionConfig({ ...env, REGION: region }), memoryTransport({ network })));
    const minted = await postToken(http(), 'bystander', '127.0.0.9');
    bystander = await WsTestClient.connect(ws(), { token: minted.body.token });
    await bystander.join('lobby');
  });

  afterAll(async () => {
    bystander?.close();
    await Promise.allSettled(apps.map((app) => app.close()));
  });

  it.each([
    'admin',
    'Admin',
    'ROOT',
    'root_',
    'r.o.o.t',
    'system',
    'administrator',
    'moderator',
    'geo-ws',
    'GeoWS_bot',
    'geows.system',
    'admin-2',
  ])('/demo/token refuses the reserved name %s with 403 RESERVED_NAME', async (name) => {
    expect(await postToken(http(), name, '127.0.0.2')).toMatchObject({
      status: 403,
      body: { code: 'RESERVED_NAME', message: expect.any(String) },
    });
  });

  it('/demo/token refuses malformed names with 400 INVALID_NAME and serves ordinary ones', async () => {
    expect(await postToken(http(), 'not a valid name!', '127.0.0.3')).toMatchObject({ status: 400, body: { code: 'INVALID_NAME' } });
    expect(await postToken(http(), 42, '127.0.0.3')).toMatchObject({ status: 400, body: { code: 'INVALID_NAME' } });
    for (const name of ['ana', 'rootbeer', 'guest-42']) expect((await postToken(http(), name, '127.0.0.3')).status).toBe(201);
  });

  it('/demo/token is rate-limited per address (429 RATE_LIMITED, Retry-After); another address is still served', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => postToken(http(), `flood-${i}`, '127.0.0.4')));
    const served = answers.filter((answer) => answer.status === 201).length;
    const limited = answers.filter((answer) => answer.status === 429);
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThanOrEqual(30);
    expect(limited.length).toBe(200 - served);
    expect(limited[0]).toMatchObject({ body: { code: 'RATE_LIMITED' }, retryAfter: expect.stringMatching(/^\d+$/) });
    // The same address stays limited; a bystander address is not.
    expect((await postToken(http(), 'flood-again', '127.0.0.4')).status).toBe(429);
    expect((await postToken(http(), 'bystander-2', '127.0.0.5')).status).toBe(201);
  });

  it("allowedOrigins default to the regions' own origins: the page's origins open sockets, another site cannot", async () => {
    const token = (await postToken(http(), 'origin-check', '127.0.0.6')).body.token;
    expect(await handshake(ws(), { token, origin: 'https://evil.example' })).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(await handshake(ws(), { token, origin: `http://127.0.0.1:${ports[1]}` })).toEqual({ status: 101 }); // a page served by us, opening an eu pane
    expect(await handshake(ws(), { token, origin: `http://127.0.0.1:${ports[0]}` })).toEqual({ status: 101 });
    expect(await handshake(ws(), { token, origin: `http://localhost:${ports[0]}` })).toEqual({ status: 101 }); // the same loopback page
    expect(await handshake(ws(), { token })).toEqual({ status: 101 }); // non-browser clients send no Origin
  });

  it('the demo authority refuses a self-signed long-lived token (10 years, for root); its own 10-minute tokens work', async () => {
    expect(await handshake(ws(), { token: await selfSigned('root', 10 * 365 * 24 * 3600) })).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    expect(await handshake(ws(), { token: await selfSigned('mallory', 3600) })).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    const minted = await postToken(http(), 'carol', '127.0.0.7');
    expect(Date.parse(minted.body.expires_at) - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    expect(await handshake(ws(1), { token: minted.body.token })).toEqual({ status: 101 });
  });

  it('through all of it the bystander kept publishing and receiving', async () => {
    const ack = await bystander.publish('chat.message', 'lobby', { text: 'still here' });
    expect(ack.seq).toEqual(expect.any(Number));
    expect((await bystander.waitForEvents('lobby', 1)).map((event) => (event.data as { text: string }).text)).toEqual(['still here']);
    expect(bystander.errors()).toEqual([]);
    expect(bystander.isOpen).toBe(true);
  });
});

/** The real process, as `npm run start:region` starts it (build first). */
describe('sample chat app: NODE_ENV=production refuses the demo authority on its public secret', () => {
  const started: RegionProcess[] = [];

  afterAll(async () => {
    await Promise.all(started.map((region) => region.stop()));
  });

  const region = async (env: Record<string, string>) => {
    const port = await freePort();
    const child = new RegionProcess('eu', port, { GEO_REGIONS: `eu=http://127.0.0.1:${port}`, ...env });
    started.push(child);
    return child;
  };

  it('exits 1 with a message naming the variables to set', async () => {
    const child = await region({ NODE_ENV: 'production' });
    const error = await child.start().then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.message).toMatch(/exited with 1/);
    for (const variable of ['GEO_AUTH=jwt', 'GEO_JWKS_URL', 'GEO_JWT_SECRET', 'GEO_DEMO_SECRET']) expect(child.log).toContain(variable);
    expect(child.log).not.toMatch(/listening/);
  }, 30_000);

  it('starts in production with a private GEO_DEMO_SECRET, warns loudly, and refuses tokens signed with the public secret', async () => {
    const child = await region({ NODE_ENV: 'production', GEO_DEMO_SECRET: 'a-private-demo-secret-of-at-least-32-bytes' });
    await child.start();
    expect(child.log).toMatch(/WARNING.*demo token authority/i);
    expect(await handshake(child.wsUrl, { token: await selfSigned('root', 300) })).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    const minted = await postToken(child.url, 'dora');
    expect(await handshake(child.wsUrl, { token: minted.body.token })).toEqual({ status: 101 });
  }, 30_000);

  it('outside production the demo still starts on the public secret, with the warning', async () => {
    const child = await region({ NODE_ENV: 'development' });
    await child.start();
    expect(child.log).toMatch(/WARNING.*demo token authority/i);
    expect(child.log).toMatch(/public demo secret/i);
  }, 30_000);
});
