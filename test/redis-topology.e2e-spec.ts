import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { globalLog, redisTransport } from '@geo-ws/nest';
import { checkLogs } from './support/checker.js';
import { startReplicated, type RedisServer } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const REGIONS = ['asia', 'eu', 'us'];

async function xreadCalls(server: RedisServer): Promise<number> {
  const client = new Redis(server.url);
  try {
    const stats = await client.info('commandstats');
    return Number(/cmdstat_xread:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  } finally {
    client.disconnect();
  }
}

describe('Redis: primary in eu, a replica in asia and in us (servers started by the test)', () => {
  let servers: Awaited<ReturnType<typeof startReplicated>>;
  let deployment: Deployment;
  const namespace = 'topo';

  beforeAll(async () => {
    servers = await startReplicated(2);
    const replicaOf: Record<string, RedisServer | undefined> = { asia: servers.replicas[0], eu: undefined, us: servers.replicas[1] };
    deployment = await deployRegions(REGIONS, {
      transport: (region) => redisTransport({ primary: servers.primary.url, replica: replicaOf[region]?.url, namespace }),
      geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
  }, 60_000);

  afterAll(async () => {
    await deployment?.close();
    await servers?.stop();
  });

  async function traffic(room: string, perPublisher: number, during?: () => Promise<void>) {
    const clients: WsTestClient[] = [];
    for (const region of REGIONS)
      for (const n of [1, 2]) clients.push(await WsTestClient.connect(deployment.region(region).wsUrl, { name: `${region}-${n}` }));
    for (const client of clients) await client.join(room);
    const acked: { eventId: string; seq: number }[] = [];
    const publishing = clients
      .filter((_, i) => i % 2 === 0)
      .map(async (publisher, p) => {
        for (let n = 0; n < perPublisher; n++) {
          acked.push(await publisher.publishUntilAcked('note.add', room, { text: `${REGIONS[p]}-${n}` }));
          await new Promise((resolve) => setTimeout(resolve, 15));
        }
      });
    await during?.();
    await Promise.all(publishing);
    for (const client of clients) await client.waitForEvents(room, acked.length, 20_000);
    const log = (await deployment.region('eu').transport.read(globalLog(room), 0, 1000)).events;
    const report = checkLogs(
      log,
      clients.map((client) => client.events(room)),
    );
    for (const client of clients) client.close();
    return { acked, log, report };
  }

  it('concurrent publishers in every region: every client ends with the identical gap-free log, read from its own replica', async () => {
    const before = await Promise.all(servers.replicas.map(xreadCalls));
    const { acked, log, report } = await traffic(`replicated-${randomUUID().slice(0, 6)}`, 20);
    console.log(`replicated: ${JSON.stringify(report)}`);
    expect(report).toEqual({ clients: 6, events: 60, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
    expect(log.map((event) => event.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(new Set(acked.map((ack) => ack.eventId))).toEqual(new Set(log.map((event) => event.event_id)));
    const after = await Promise.all(servers.replicas.map(xreadCalls));
    after.forEach((calls, i) => expect(calls).toBeGreaterThan(before[i])); // asia and us tail their replicas
  }, 60_000);

  it('a replica killed mid-stream: its region falls back to the primary and nothing is lost', async () => {
    const { acked, log, report } = await traffic(`replica-kill-${randomUUID().slice(0, 6)}`, 25, async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await servers.replicas[1].kill(); // us's replica
    });
    console.log(`replica killed: ${JSON.stringify(report)}`);
    expect(report).toEqual({ clients: 6, events: 75, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
    expect(log.map((event) => event.seq)).toEqual(Array.from({ length: 75 }, (_, i) => i + 1));
    expect(new Set(acked.map((ack) => ack.eventId))).toEqual(new Set(log.map((event) => event.event_id)));
  }, 60_000);

  it('a flushed primary is a new epoch for every log: resumes say recovered: false, never skip', async () => {
    const room = `flush-${randomUUID().slice(0, 6)}`;
    const client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'flusher' });
    const joined = await client.join(room);
    for (let n = 0; n < 3; n++) await client.publish('note.add', room, { text: `${n}` });
    await client.waitForEvents(room, 3);
    const admin = new Redis(servers.primary.url);
    await admin.flushall();
    admin.disconnect();
    await client.waitForEvents(room, 3);
    const notice = await client.next('geo.error', (data) => data.room === room && data.code === 'UNAVAILABLE', 10_000);
    expect(notice.message).toMatch(/join it again/);
    const rejoined = await client.join(room, { since: 3, epoch: joined.epoch });
    expect(rejoined).toMatchObject({ recovered: false, seq: 0 });
    expect(rejoined.epoch).not.toBe(joined.epoch);
    expect((await client.publish('note.add', room, { text: 'after' })).seq).toBe(1);
    client.close();
  });

  it('room ids with ":", "{", "}", "*" get keys of their own, in their own hash tag', async () => {
    const transport = deployment.region('eu').transport;
    const rooms = ['a:b', '{a}', 'a}{b', '*', 'a*', 'geows:{topo:g:x}:log'];
    for (const room of rooms)
      await transport.append(globalLog(room), {
        event_id: randomUUID(),
        room_id: room,
        type: 'note.add',
        sender: 's',
        timestamp: new Date().toISOString(),
        region: 'eu',
        data: room,
      });
    const client = new Redis(servers.primary.url);
    try {
      for (const room of rooms) {
        const tag = `{${namespace}:g:${Buffer.from(room).toString('base64url')}}`;
        expect(await client.xlen(`geows:${tag}:log`)).toBe(1);
        const [[, fields]] = await client.xrange(`geows:${tag}:log`, '-', '+');
        expect(JSON.parse(fields[1]).data).toBe(room);
      }
      for (const key of await client.keys('geows:*'))
        expect(key).toMatch(/^geows:(\{topo:[grp]:[A-Za-z0-9_:-]+\}:[a-z]+(:[A-Za-z0-9_-]+)?|topo:[a-z]+(:[A-Za-z0-9_-]+)?)$/);
    } finally {
      client.disconnect();
    }
  });
});
