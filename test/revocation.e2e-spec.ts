import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import {
  jwtAuthenticator,
  memoryTransport,
  natsTransport,
  redisTransport,
  type GeoTransportFactory,
  type GeoMemoryNetwork,
} from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { Redis } from 'ioredis';
import { RedisServer } from '../apps/lab/src/topology/redis-servers.js';
import { dropRedisNamespace } from './support/redis-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { handshakeOutcome, signTestToken, TEST_AUDIENCE, TEST_ISSUER } from './support/tokens.js';
import { WsTestClient } from './support/ws-test-client.js';

const SECRET = 'revocation-e2e-secret-long-enough-for-hs256';
const ISSUER = TEST_ISSUER;
const AUDIENCE = TEST_AUDIENCE;
const natsUrl = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** How long after revoke() an open connection may still join or publish (AccessPolicy's recheck), plus slack for one state-store read. */
const RECHECK_BOUND_MS = 5000 + 1500;

async function token(sub: string, jti = `jti-${randomUUID()}`): Promise<{ token: string; jti: string }> {
  return { token: await signTestToken(SECRET, sub, { regions: ['eu', 'us'], jti }), jti };
}

const handshake = (url: string, bearer: string) => handshakeOutcome(url, { token: bearer });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const namespace = testNamespace('revoke');
const transports: [string, (region: string, network: GeoMemoryNetwork) => GeoTransportFactory, () => Promise<void>][] = [
  ['memory', (_region, network) => memoryTransport({ network }), async () => undefined],
  ['nats', () => natsTransport({ servers: natsUrl, namespace }), () => dropNatsNamespace(natsUrl, namespace)],
  ['redis', () => redisTransport({ primary: redisUrl, namespace }), () => dropRedisNamespace(redisUrl, namespace)],
];

/** Issue 9, item 6: a revoked token opens nothing, refreshes nothing, and soon acts on nothing. */
describe.each(transports)('revocation on %s: handshake, geo.auth, then join and publish', (_name, transport, drop) => {
  let deployment: Deployment;
  let bystander: WsTestClient;
  const room = `vault-${randomUUID().slice(0, 6)}`;
  const wsUrl = (region: string) => deployment.region(region).wsUrl;
  const revoke = (jti: string) => deployment.region('eu').server.revoke(jti, Date.now() + 3_600_000); // revoked in eu

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], {
      transport,
      geo: { authenticate: jwtAuthenticator({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET }) },
    });
    bystander = await WsTestClient.connect(wsUrl('us'), { token: (await token('bystander')).token });
    await bystander.join(room);
  });

  afterAll(async () => {
    bystander?.close();
    await deployment?.close();
    await drop();
  });

  it('a revoked token opens no new connection in any region (HTTP 401 UNAUTHORIZED); a fresh token for the same user does', async () => {
    const stolen = await token('mallory');
    expect(await handshake(wsUrl('us'), stolen.token)).toEqual({ status: 101 });
    await revoke(stolen.jti);
    for (const region of ['eu', 'us']) expect(await handshake(wsUrl(region), stolen.token)).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    expect(await handshake(wsUrl('us'), (await token('mallory')).token)).toEqual({ status: 101 });
  });

  it('geo.auth with a revoked token is refused (UNAUTHORIZED, "revoked") and the connection keeps its current token', async () => {
    const current = await token('refresher');
    const client = await WsTestClient.connect(wsUrl('us'), { token: current.token });
    const revoked = await token('refresher');
    await revoke(revoked.jti);
    client.send('geo.auth', { token: revoked.token });
    expect(await client.next('geo.error')).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/revoked/) });
    client.send('geo.auth', { token: (await token('refresher')).token });
    expect(await client.next('geo.authed')).toEqual({ expires_at: expect.stringMatching(/Z$/) });
    await client.join(room);
    client.close();
  });

  it(`a connection idle past the recheck period whose token is revoked in another region is told and closed (4003) within ${RECHECK_BOUND_MS} ms; the burst it sends after revoke() is not acked`, async () => {
    const victim = await token('victim');
    const client = await WsTestClient.connect(wsUrl('us'), { token: victim.token });
    await client.join(room);
    expect((await client.publish('note.add', room, { text: 'before revoke' })).seq).toEqual(expect.any(Number));
    await sleep(5500); // silent past REVOCATION_RECHECK_MS: the status us holds for the token is stale
    const revokedAt = Date.now();
    await revoke(victim.jti); // in eu
    // Issue 20, point 4: 90 publishes and a join right after revoke() resolved were all accepted.
    for (let i = 0; i < 90; i++) client.send('note.add', { event_id: randomUUID(), room_id: room, data: { text: `burst ${i}` } });
    client.send('geo.join', { room: `${room}-after` });
    expect(await client.waitForClose(RECHECK_BOUND_MS)).toBe(4003);
    expect(client.closeReason).toBe('token revoked');
    expect(client.closedAt! - revokedAt).toBeLessThanOrEqual(RECHECK_BOUND_MS);
    expect(client.frames.filter((frame) => frame.event === 'geo.ack')).toHaveLength(1); // the one before revoke()
    expect(client.frames.filter((frame) => frame.event === 'geo.joined' && frame.data.room === `${room}-after`)).toEqual([]);
    expect(client.errors()[0]).toMatchObject({ code: 'UNAUTHORIZED', message: 'the token was revoked' });
  }, 20_000);

  it('a connection that only receives is closed (4003) when its token is revoked in another region, and gets no room event after', async () => {
    const listener = await token('listener');
    const client = await WsTestClient.connect(wsUrl('us'), { token: listener.token });
    await client.join(room);
    const revokedAt = Date.now();
    await revoke(listener.jti);
    expect(await client.waitForClose(RECHECK_BOUND_MS)).toBe(4003);
    expect(client.closedAt! - revokedAt).toBeLessThanOrEqual(RECHECK_BOUND_MS);
    expect(client.errors()).toEqual([{ code: 'UNAUTHORIZED', message: 'the token was revoked' }]);
  });

  it('revoke() on the instance that holds the connection applies at once: the next frame is refused and the connection closed (4003)', async () => {
    const local = await token('local');
    const client = await WsTestClient.connect(wsUrl('eu'), { token: local.token });
    await client.join(room);
    await revoke(local.jti); // eu, the same instance
    client.send('note.add', { event_id: randomUUID(), room_id: room, data: { text: 'after a local revoke' } });
    expect(await client.waitForClose(1000)).toBe(4003);
    expect(client.frames.filter((frame) => frame.event === 'geo.ack')).toEqual([]);
  });

  it('the bystander saw no error and kept publishing and receiving', async () => {
    expect((await bystander.publish('note.add', room, { text: 'bystander' })).seq).toEqual(expect.any(Number));
    const texts = () => bystander.events(room).map((event) => (event.data as { text: string }).text);
    await waitFor(() => texts().includes('bystander'), 'the bystander to receive its own event');
    expect(texts()).toEqual(['before revoke', 'bystander']); // nothing sent with a revoked token was appended
    expect(bystander.errors()).toEqual([]);
    expect(bystander.isOpen).toBe(true);
  });
});

/**
 * Failing closed must not look like a bad token: when the revocation list cannot be read
 * (the region's Redis is down), the handshake answers 503 UNAVAILABLE, so clients try
 * another region instead of asking for a new token.
 */
describe('revocation list unreadable: the handshake fails closed with 503, not 401', () => {
  let redis: RedisServer;
  let deployment: Deployment;

  beforeAll(async () => {
    redis = await RedisServer.start(['--save', '', '--appendonly', 'no']);
    deployment = await deployRegions(['eu'], {
      geo: { authenticate: jwtAuthenticator({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET }) },
      transport: () => redisTransport({ primary: redis.url, namespace: testNamespace('closed') }),
    });
  }, 30_000);

  afterAll(async () => {
    await deployment?.close();
    await redis?.stop();
  });

  it('401 never, 503 UNAVAILABLE while Redis is down, 101 once it is back', async () => {
    const { token: valid } = await token('carol');
    expect(await handshake(deployment.region('eu').wsUrl, valid)).toEqual({ status: 101 });
    await redis.kill();
    expect(await handshake(deployment.region('eu').wsUrl, valid)).toEqual({ status: 503, code: 'UNAVAILABLE' });
    await redis.restart();
    let after = await handshake(deployment.region('eu').wsUrl, valid);
    for (let attempt = 0; attempt < 50 && after.status !== 101; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      after = await handshake(deployment.region('eu').wsUrl, valid);
    }
    expect(after).toEqual({ status: 101 });
  }, 30_000);
});

/**
 * Redis Pub/Sub is at-most-once: a revocation announced while an instance's subscriber was
 * disconnected never reaches it. When the subscriber is back, the instance reads the
 * revocation status of the tokens its connections hold, once each.
 */
describe('revocation channel on Redis: a revocation missed while the subscriber was down is found when it reconnects', () => {
  let redis: RedisServer;
  let deployment: Deployment;
  let bystander: WsTestClient;
  const namespace = testNamespace('missed');
  const room = `missed-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    redis = await RedisServer.start(['--save', '', '--appendonly', 'no']);
    deployment = await deployRegions(['eu', 'us'], {
      geo: { authenticate: jwtAuthenticator({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET }) },
      transport: () => redisTransport({ primary: redis.url, namespace }),
    });
    bystander = await WsTestClient.connect(deployment.region('us').wsUrl, { token: (await token('bystander')).token });
    await bystander.join(room);
  }, 30_000);

  afterAll(async () => {
    bystander?.close();
    await deployment?.close();
    await redis?.stop();
  });

  it('a connection whose token was revoked without a message (lost) is closed (4003) after the subscribers reconnect; the bystander is not', async () => {
    const victim = await token('victim');
    const client = await WsTestClient.connect(deployment.region('us').wsUrl, { token: victim.token });
    await client.join(room);
    const raw = new Redis(redis.url);
    try {
      // The revocation as revoke() stores it, without its announcement: as if the message was lost.
      await raw.set(`geows:${namespace}:revoked:${victim.jti}`, '1', 'PX', 3_600_000);
      await sleep(300);
      expect({ open: client.isOpen, code: client.closeCode, errors: client.errors() }).toEqual({ open: true, code: undefined, errors: [] }); // nobody was told
      await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub'); // every subscriber drops, and reconnects
    } finally {
      raw.disconnect();
    }
    expect(await client.waitForClose(10_000)).toBe(4003);
    expect(client.errors()).toEqual([{ code: 'UNAUTHORIZED', message: 'the token was revoked' }]);
    expect(bystander.isOpen).toBe(true);
    expect((await bystander.publishUntilAcked('note.add', room, { text: 'after the reconnect' })).seq).toEqual(expect.any(Number));
    await bystander.waitForEvents(room, 1);
    expect(bystander.errors()).toEqual([]);
  }, 30_000);
});
