import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { globalLog, redisTransport } from '@geo-ws/nest';
import { checkLogs } from './support/checker.js';
import { LinkProxy } from '../apps/lab/src/topology/link-proxy.js';
import { RedisServer, startReplicated } from '../apps/lab/src/topology/redis-servers.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function commandsProcessed(server: RedisServer): Promise<number> {
  const client = new Redis(server.url);
  try {
    return Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))?.[1]);
  } finally {
    client.disconnect();
  }
}

/**
 * The live tails' periodic checks (every 2 s) on a healthy Redis: they must never stop a
 * tail that is merely ahead of what a check read, and their cost must not grow with rooms.
 */
describe('Redis live checks', () => {
  /**
   * us reads its local replica and reaches the primary in eu 40 ms away: a check's answer
   * is 40 ms old when it arrives, and the tail has moved on meanwhile. A check that took
   * such a position for a log that went back stopped healthy tails under load.
   */
  describe('a region whose primary is 40 ms away, reading its own replica, under steady publishing', () => {
    let servers: Awaited<ReturnType<typeof startReplicated>>;
    let proxy: LinkProxy;
    let deployment: Deployment;

    beforeAll(async () => {
      servers = await startReplicated(1);
      proxy = await new LinkProxy({ host: servers.primary.host, port: servers.primary.port }, 40).start();
      const remotePrimary = `redis://127.0.0.1:${proxy.port}`;
      deployment = await deployRegions(['eu', 'us'], {
        transport: (region) =>
          region === 'eu'
            ? redisTransport({ primary: servers.primary.url, namespace: 'checks' })
            : redisTransport({ primary: remotePrimary, replica: servers.replicas[0].url, namespace: 'checks' }),
        geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
      });
    }, 60_000);

    afterAll(async () => {
      await deployment?.close();
      await proxy?.stop();
      await servers?.stop();
    });

    it('no tail stops over four checks, and every member receives every event once, in order', async () => {
      const room = `busy-${randomUUID().slice(0, 6)}`;
      const quiet = `quiet-${randomUUID().slice(0, 6)}`;
      const members = [
        await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'us-1' }),
        await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'us-2' }),
        await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'eu-1' }),
      ];
      for (const member of members) await member.join(room);
      const bystander = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'bystander' });
      await bystander.join(quiet);
      const publisher = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'publisher' });
      await publisher.join(room);
      await publisher.join(quiet);

      // Every few ms for 9 s: more than four checks, each racing appends read from the replica.
      const until = Date.now() + 9000;
      let published = 0;
      while (Date.now() < until) {
        await publisher.publishUntilAcked('note.add', room, { text: `n${published++}` });
        await sleep(3);
      }
      await publisher.publishUntilAcked('note.add', quiet, { text: 'for the bystander' });
      for (const member of members) await member.waitForEvents(room, published, 20_000);
      await bystander.waitForEvents(quiet, 1);

      for (const member of members) expect(member.errors()).toEqual([]);
      const log = (await deployment.region('eu').transport.read(globalLog(room), 0, 100_000)).events;
      const report = checkLogs(
        log,
        members.map((member) => member.events(room)),
      );
      console.log(`remote primary, local replica: ${published} events; ${JSON.stringify(report)}`);
      expect(report).toEqual({ clients: 3, events: published, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
      for (const client of [...members, bystander, publisher]) client.close();
    }, 60_000);
  });

  /**
   * 2,000 rooms (4,000 tailed logs) held idle by one instance (20 connections × 100 rooms): the checks cost
   * Redis a fixed number of commands per interval. One command per room every 2 s once
   * cost 37,500 commands/s for 20,000 rooms and slowed every other client of that Redis.
   */
  describe('idle rooms', () => {
    let server: RedisServer;
    let deployment: Deployment;

    beforeAll(async () => {
      server = await RedisServer.start();
      deployment = await deployRegions(['eu'], {
        transport: () => redisTransport({ primary: server.url, namespace: 'idle' }),
        geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } },
      });
    }, 30_000);

    afterAll(async () => {
      await deployment?.close();
      await server?.stop();
    });

    it('cost Redis the same few commands per check whatever their number', async () => {
      const clients: WsTestClient[] = [];
      /** Commands Redis processed per second over 6 s (three checks), with `rooms` tailed. */
      const idleCost = async (rooms: number): Promise<number> => {
        // Each connection's frames run one after another: join on many connections at once.
        const added = Array.from({ length: rooms / 100 - clients.length }, (_, i) => clients.length + i);
        clients.push(
          ...(await Promise.all(
            added.map(async (c) => {
              const client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: `holder-${c}` });
              for (let n = 0; n < 100; n++) client.send('geo.join', { room: `idle-${c}-${n}` });
              await client.next('geo.joined', (data) => data.room === `idle-${c}-99` && !data.scope, 60_000);
              return client;
            }),
          )),
        );
        // Two tailed logs per room: the fixture app has a regional handler too.
        expect(deployment.region('eu').server.feedCount).toBe(2 * rooms);
        await sleep(2500); // joins settled
        const before = await commandsProcessed(server);
        await sleep(6000);
        return ((await commandsProcessed(server)) - before) / 6;
      };
      const few = await idleCost(100);
      const many = await idleCost(2000);
      console.log(`idle cost: ${few.toFixed(1)} commands/s with 100 rooms, ${many.toFixed(1)} with 2,000`);
      // The same handful of commands (the live read, the dataset check, this test's INFO):
      // not one per tailed log (which would be 1,900/s more with 2,000 rooms).
      expect(many).toBeLessThan(few + 5);
      expect(many).toBeLessThan(20);

      // A bystander in this instance still gets its events.
      const bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'bystander' });
      await bystander.join('lobby');
      await bystander.publishUntilAcked('note.add', 'lobby', { text: 'still here' });
      await bystander.waitForEvents('lobby', 1);
      for (const client of [...clients, bystander]) client.close();
    }, 120_000);
  });
});
