import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { globalLog, natsTransport, redisTransport, type GeoWsModuleOptions } from '@geo-ws/nest';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { RedisServer } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const ROOMS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Joins need their own budget here: one connection joins hundreds of rooms. */
const geo: Partial<GeoWsModuleOptions> = {
  limits: { rate: { perSecond: 5000, burst: 5000 }, maxRoomsPerConnection: ROOMS + 10 },
  presence: { ttlMs: 30_000 },
};

/** Joins `count` rooms named `<prefix>-<n>` that nobody publishes to. */
async function joinEmptyRooms(client: WsTestClient, prefix: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    const joined = await client.join(`${prefix}-${n}`);
    expect(joined).toMatchObject({ seq: 0, recovered: true });
  }
}

/**
 * Issue 9, item 6.4: any client can join rooms, so nothing a join of a never-published room
 * creates on the broker may live forever; and a room that does get events keeps its epoch
 * (a client that joined it empty and resumes from `since: 0` loses nothing).
 */
describe('joining never-published rooms leaves no permanent broker state', () => {
  describe('Redis', () => {
    let server: RedisServer;
    let deployment: Deployment;
    const namespace = 'bounds';
    const emptyLogTtlMs = 10_000;
    let admin: Redis;

    beforeAll(async () => {
      server = await RedisServer.start();
      admin = new Redis(server.url);
      deployment = await deployRegions(['eu'], { transport: () => redisTransport({ primary: server.url, namespace, emptyLogTtlMs }), geo });
    }, 30_000);

    afterAll(async () => {
      await deployment?.close();
      admin?.disconnect();
      await server?.stop();
    });

    async function keysWithTtl(): Promise<{ key: string; ttl: number }[]> {
      const keys = await admin.keys('geows:*');
      return Promise.all(keys.map(async (key) => ({ key, ttl: await admin.pttl(key) })));
    }

    it(`${ROOMS} joined empty rooms: every key expires, the empty rooms' keys are gone after the TTL, a published room keeps its epoch`, async () => {
      const eu = deployment.region('eu');
      const joiner = await WsTestClient.connect(eu.wsUrl, { name: 'joiner' });
      await joinEmptyRooms(joiner, 'empty', ROOMS);
      // A room joined while empty, then published to: one epoch from the join on.
      const member = await WsTestClient.connect(eu.wsUrl, { name: 'member' });
      const emptyJoin = await member.join('published');
      // Members that stay longer than the TTL keep the epoch alive (the live check extends it).
      await sleep(emptyLogTtlMs + 2000);
      const acked = await member.publish('note.add', 'published', { text: 'first' });
      expect(acked.seq).toBe(1);
      await member.waitForEvents('published', 1);
      expect(member.frames.some((frame) => frame.event === 'geo.error')).toBe(false);

      const live = await keysWithTtl();
      // The one key without an expiry is the namespace's dataset hash (its id is in every epoch), whatever the rooms.
      const permanent = live.filter(({ ttl, key }) => ttl === -1 && key !== `geows:${namespace}:dataset`);
      console.log(
        `redis: ${live.length} keys after ${ROOMS} joins (global and regional logs, sessions, presence); without an expiry: ${permanent.length}`,
      );
      expect(permanent).toEqual([]);
      const metas = live.filter(({ key }) => key.endsWith(':meta'));
      expect(metas.length).toBeGreaterThanOrEqual(2 * ROOMS);

      // Everyone leaves: past the TTL the empty rooms leave nothing behind.
      joiner.close();
      member.close();
      await sleep(emptyLogTtlMs + 2000);
      const left = await keysWithTtl();
      const emptyTag = (n: number) => `{${namespace}:g:${Buffer.from(`empty-${n}`).toString('base64url')}}`;
      expect(left.filter(({ key }) => Array.from({ length: ROOMS }, (_, n) => emptyTag(n)).some((tag) => key.includes(tag)))).toEqual([]);
      expect(left.filter(({ ttl }) => ttl === -1).map(({ key }) => key)).toEqual([`geows:${namespace}:dataset`]);
      console.log(
        `redis: ${left.length} keys ${emptyLogTtlMs + 2000} ms after everyone left: ${[...new Set(left.map(({ key }) => key.replace(/\{[^}]*\}/, '{…}').replace(/:[A-Za-z0-9_-]{20,}$/, ':…')))].join(', ')}`,
      );

      // The published room kept its epoch: a client that joined it empty resumes from 0 without loss.
      const back = await WsTestClient.connect(eu.wsUrl, { name: 'member' });
      const resumed = await back.join('published', { since: 0, epoch: emptyJoin.epoch });
      expect(resumed).toMatchObject({ recovered: true, epoch: emptyJoin.epoch });
      await back.waitForEvents('published', 1);
      expect((await eu.transport.head(globalLog('published'))).epoch).toBe(emptyJoin.epoch);
      back.close();
    }, 60_000);
  });

  for (const roomHomes of [false, true])
    describe(roomHomes ? 'NATS with room homes' : 'NATS', () => {
      const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
      const namespace = testNamespace('bounds');
      let deployment: Deployment;
      /** Buckets that keep their entries (no age limit): one entry per deleted log, or per published room's home. */
      const kept = [`KV_geows_${namespace}_epochs`, `KV_geows_${namespace}_homes`];

      beforeAll(async () => {
        deployment = await deployRegions(['eu'], { transport: () => natsTransport({ servers, namespace, roomHomes }), geo });
      }, 30_000);

      afterAll(async () => {
        await deployment?.close();
        await dropNatsNamespace(servers, namespace);
      });

      async function buckets(): Promise<Record<string, { messages: number; maxAgeMs: number }>> {
        const nc = await connect({ servers });
        try {
          const jsm = await jetstreamManager(nc);
          const result: Record<string, { messages: number; maxAgeMs: number }> = {};
          for await (const info of jsm.streams.list()) {
            const name = info.config.name;
            if (name.startsWith(`KV_geows_${namespace}_`) || name.startsWith(`GEOWS_${namespace.toUpperCase()}`)) {
              result[name] = { messages: info.state.messages, maxAgeMs: info.config.max_age / 1_000_000 };
            }
          }
          return result;
        } finally {
          await nc.close();
        }
      }

      it(`${ROOMS} joined empty rooms create no KV entry; every bucket and stream expires what it holds; a published room keeps its epoch`, async () => {
        const eu = deployment.region('eu');
        const joiner = await WsTestClient.connect(eu.wsUrl, { name: 'joiner' });
        await joinEmptyRooms(joiner, 'empty', ROOMS);
        const member = await WsTestClient.connect(eu.wsUrl, { name: 'member' });
        const emptyJoin = await member.join('published');
        await member.publish('note.add', 'published', { text: 'first' });
        await member.waitForEvents('published', 1);

        const state = await buckets();
        console.log(`nats: after ${ROOMS} joins ${JSON.stringify(state)}`);
        expect(state[`KV_geows_${namespace}_epochs`].messages).toBe(0);
        // Joins place no room: the only home is the published room's.
        if (roomHomes) expect(state[`KV_geows_${namespace}_homes`].messages).toBe(1);
        for (const [name, { maxAgeMs }] of Object.entries(state)) {
          if (!kept.includes(name)) expect([name, maxAgeMs > 0]).toEqual([name, true]);
        }
        joiner.close();
        member.close();

        // The epoch the empty room was joined with is the published room's, in a fresh instance too.
        const back = await WsTestClient.connect(eu.wsUrl, { name: 'member' });
        expect(await back.join('published', { since: 0, epoch: emptyJoin.epoch })).toMatchObject({
          recovered: true,
          epoch: emptyJoin.epoch,
        });
        await back.waitForEvents('published', 1);
        back.close();
        const fresh = await natsTransport({ servers, namespace, roomHomes, setup: 'verify' })({
          region: 'us',
          regions: ['eu', 'us'],
          dedupWindowMs: 120_000,
          retention: { maxEvents: 10_000, maxAgeMs: 86_400_000 },
        });
        await fresh.connect();
        try {
          expect((await fresh.head(globalLog('published'))).epoch).toBe(emptyJoin.epoch);
        } finally {
          await fresh.close();
        }
      }, 60_000);
    });
});
