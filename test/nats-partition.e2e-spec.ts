/**
 * A room's live tail across a NATS gateway that is cut and healed (found by the lab's
 * partition scenario: every tail of a region cut off from the log's cluster stopped for
 * good, silently). After the heal, every event appended during and after the cut reaches
 * the tail, in order, or the tail fails (members rejoin): it never just stops.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { globalLog, natsTransport, type GeoLoggedEnvelope, type GeoTransport } from '@geo-ws/nest';
import { LinkProxy } from '../apps/lab/src/topology/link-proxy.js';
import { startSupercluster, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';

const REGIONS = ['asia', 'us'];

describe('NATS tail across a gateway cut and healed', () => {
  const proxies: { from: string; to: string; proxy: LinkProxy }[] = [];
  let topology: NatsTopology | undefined;
  const transports: (GeoTransport & { connect(): Promise<void> })[] = [];

  afterAll(async () => {
    await Promise.allSettled(transports.map((transport) => transport.close()));
    await topology?.stop();
    await Promise.allSettled(proxies.map(({ proxy }) => proxy.stop()));
  });

  it('delivers every event appended during and after the cut once the link heals', async () => {
    Logger.overrideLogger(process.env.GEO_DEBUG ? ['log', 'warn', 'error', 'debug'] : ['warn', 'error']);
    topology = await startSupercluster(REGIONS, {
      link: async (from, to, host, port) => {
        const proxy = await new LinkProxy({ host, port }, 20).start();
        proxies.push({ from, to, proxy });
        return { host: proxy.host, port: proxy.port };
      },
    });
    const clusters = topology;
    const namespace = `part${randomUUID().slice(0, 6)}`;
    for (const region of REGIONS) {
      const transport = natsTransport({ servers: clusters.node(region).clientUrl, namespace, homeCluster: 'asia' })({
        region,
        regions: REGIONS,
        dedupWindowMs: 120_000,
        retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 },
      }) as GeoTransport & { connect(): Promise<void> };
      await transport.connect();
      transports.push(transport);
    }
    const [asia, us] = transports;
    const room = globalLog(`part-${randomUUID().slice(0, 6)}`);
    const draft = (n: number) => ({
      event_id: `${namespace}-${n}`,
      room_id: room.room,
      type: 't.e',
      sender: 's',
      timestamp: new Date().toISOString(),
      region: 'asia',
      data: { n },
    });
    await asia.append(room, draft(0));
    const received: GeoLoggedEnvelope[] = [];
    let failed: Error | undefined;
    const tail = await us.tail(
      room,
      0,
      (event) => received.push(event),
      (error) => (failed = error),
    );
    try {
      let n = 1;
      const appendFor = async (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          await asia.append(room, draft(n++));
          await sleep(50);
        }
      };
      await appendFor(1_000);
      for (const { proxy } of proxies) proxy.cut();
      await appendFor(8_000);
      for (const { proxy } of proxies) proxy.heal();
      await appendFor(2_000);
      const total = n;
      const deadline = Date.now() + 30_000;
      while (received.length < total && failed === undefined && Date.now() < deadline) await sleep(100);
      console.log(`tail: ${received.length} of ${total} events, failed: ${failed?.message ?? 'no'}`);
      // Either every event, in order, or a failure the feed turns into "join again": never silence.
      if (failed === undefined) expect(received.map((event) => (event.data as { n: number }).n)).toEqual([...Array(total).keys()]);
      else expect(failed.message).toMatch(/.+/);
      expect(received.length === total || failed !== undefined).toBe(true);
    } finally {
      await tail.close();
    }
  }, 90_000);
});
