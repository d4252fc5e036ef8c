import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LoadFleet } from '../apps/lab/src/load/fleet.js';
import type { ClientPlan, Impl } from '../apps/lab/src/load/load.types.js';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { REGION_ENTRY, ServerProcess } from '../apps/lab/src/topology/server-process.js';
import { testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';

const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
const peerEntry = (name: string) => fileURLToPath(new URL(`../apps/lab/dist/peers/${name}.js`, import.meta.url));
const CLIENTS = 100;
const ROOM_SIZE = 10;
const PUBLISHERS_PER_ROOM = 2;
const RATE = 5;
const PUBLISH_MS = 3000;

/** The lab's load generator against one server of each implementation, on the machine's Redis (built first: the fleet forks dist/). */
describe.each<Impl>(['geo', 'socketio', 'ceiling'])('lab load fleet against %s', (impl) => {
  const namespace = testNamespace(`labload${impl}`);
  const secret = randomBytes(32).toString('hex');
  let server: ServerProcess;
  let fleet: LoadFleet | undefined;

  beforeAll(async () => {
    const port = await freePort();
    const entry = impl === 'geo' ? REGION_ENTRY : peerEntry(impl === 'socketio' ? 'socketio-server' : 'ceiling-server');
    server = new ServerProcess({
      name: `${impl}-server`,
      entry,
      port,
      env: {
        REGION: 'local',
        GEO_REGIONS: `local=http://127.0.0.1:${port}`,
        GEO_TRANSPORT: 'redis',
        GEO_REDIS_URL: redisUrl,
        GEO_NAMESPACE: namespace,
        GEO_DEMO_SECRET: secret,
        GEO_QUIET: '1',
      },
    });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    await fleet?.close();
    const code = await server.stop();
    if (impl !== 'geo') expect(code).toBe(0); // the peers exit cleanly on SIGTERM
    await dropRedisNamespace(redisUrl, namespace);
  }, 30_000);

  it('every member receives every acked publish of its rooms once; the logs have the contract’s shape', async () => {
    const target = { region: 'local', httpUrl: server.url, wsUrl: impl === 'socketio' ? server.url : server.wsUrl };
    const members: Record<string, string[]> = {};
    const clients: ClientPlan[] = Array.from({ length: CLIENTS }, (_, i) => {
      const room = `room-${Math.floor(i / ROOM_SIZE)}`;
      const id = `c${i}`;
      (members[room] ??= []).push(id);
      const publishes = i % ROOM_SIZE < PUBLISHERS_PER_ROOM;
      return { id, home: 'local', targets: [target], rooms: [room], publishTo: publishes ? [room] : [] };
    });
    fleet = await LoadFleet.start({
      workers: 2,
      plan: {
        impl,
        runId: `t${Date.now().toString(36)}`,
        auth: { secret, issuer: 'geo-ws-demo', audience: 'geo-ws-chat', regions: ['local'] },
        publishRatePerSec: RATE,
        payloadBytes: 100,
        connectConcurrency: 50,
      },
      clients,
    });
    const connected = await fleet.connect();
    expect(connected.failed).toEqual([]);
    expect(connected.connectMs).toHaveLength(CLIENTS);

    fleet.startPublishing();
    await sleep(PUBLISH_MS);
    fleet.stopPublishing();
    // Settled: every publish answered and delivered to its room (progress comes once a second).
    // Up to 30 s: on a loaded CI machine a peer's ack may time out (5 s) and be retried.
    const expectedPublishes = (CLIENTS / ROOM_SIZE) * PUBLISHERS_PER_ROOM * RATE * (PUBLISH_MS / 1000);
    // Progress is a once-a-second sample: wait for one taken after publishing stopped.
    await sleep(1_500);
    for (let i = 0; i < 120; i++) {
      const now = fleet.progress();
      if (now.acked === now.published && now.delivered === now.acked * ROOM_SIZE && now.published > 0) break;
      await sleep(250);
    }
    const { publishes, clients: logs } = await fleet.collect();
    const progress = fleet.progress();
    console.log(
      `${impl}: ${CLIENTS} clients, connect p50 ${median(connected.connectMs).toFixed(1)} ms; ${publishes.length} publishes, ` +
        `${progress.delivered} deliveries, errors ${progress.errors}`,
    );

    // Publishes: about rate × publishers × time, every one acked.
    expect(publishes.length).toBeGreaterThan(expectedPublishes * 0.7);
    expect(publishes.length).toBeLessThan(expectedPublishes * 1.3);
    for (const publish of publishes) {
      expect(publish).toEqual(
        expect.objectContaining({ number: expect.any(Number), room: expect.any(String), publisher: expect.any(String), region: 'local' }),
      );
      expect(publish.error).toBeUndefined();
      expect(publish.ackedAt).toBeGreaterThanOrEqual(publish.sentAt);
      if (impl === 'geo') expect(publish.ackSeq).toEqual(expect.any(Number));
    }
    expect(new Set(publishes.map((publish) => publish.number)).size).toBe(publishes.length);

    // Every member got every publish of its room, once; columns line up.
    expect(logs).toHaveLength(CLIENTS);
    const byRoom = new Map<string, Set<number>>();
    for (const publish of publishes) {
      const set = byRoom.get(publish.room) ?? new Set();
      set.add(publish.number);
      byRoom.set(publish.room, set);
    }
    for (const log of logs) {
      expect(log.connectivity).toEqual([]);
      expect(log.gaps).toBe(0);
      expect(log.rooms).toHaveLength(1);
      const [room] = log.rooms;
      expect(members[room.room]).toContain(log.id);
      const length = room.numbers.length;
      expect([room.seqs.length, room.receivedAt.length, room.regions.length]).toEqual([length, length, length]);
      expect(new Set(room.numbers).size).toBe(length);
      expect(new Set(room.numbers)).toEqual(byRoom.get(room.room));
      expect(new Set(room.regions)).toEqual(new Set(['local']));
      if (impl === 'geo') {
        for (let i = 1; i < length; i++) expect(room.seqs[i]).toBeGreaterThan(room.seqs[i - 1]);
      } else expect(new Set(room.seqs)).toEqual(new Set([-1]));
    }
  }, 90_000);
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}
