import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type AckFrame, type GeoClientOptions, type GeoEnvelope } from '@geo-ws/client';
import { globalLog, natsTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { demoToken } from './support/demo-token.js';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { startSingleNode, type NatsTopology } from '../apps/lab/src/topology/nats-cluster.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `geo.error` codes the clients received, by code (what the outage looked like on the wire). */
const errorCodes = new Map<string, number>();
class SniffingWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    this.addEventListener('message', (message) => {
      const frame = JSON.parse(message.data as string) as { event: string; data: { code?: string } };
      if (frame.event === 'geo.error') errorCodes.set(frame.data.code!, (errorCodes.get(frame.data.code!) ?? 0) + 1);
    });
  }
}
const textOf = (event: GeoEnvelope) => (event.data as { text: string }).text;

/**
 * Issue 9, item 3. A region process of the sample app on its own nats-server; one SDK
 * client publishes a numbered sequence steadily (without waiting for acks) while the
 * nats-server is SIGKILLed and, 5 s later, restarted on the same store. A bystander in the
 * room must see this client's messages appended in exactly the order they were published:
 * none lost, none twice, none overtaking an earlier one.
 */
describe('SDK publish order across a broker outage (nats-server kill -9 and restart, region process)', () => {
  let nats: NatsTopology;
  let region: RegionProcess;
  const clients: GeoClient[] = [];
  const namespace = `order${randomUUID().slice(0, 6)}`;

  const connect = async (name: string, options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    const client = await GeoClient.connect({
      regions: [{ name: 'eu', url: region.url, wsUrl: region.wsUrl }],
      WebSocket: SniffingWebSocket,
      token: () => demoToken(region.url, name),
      backoff: { baseMs: 100, maxMs: 1000 },
      ...options,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    nats = await startSingleNode('eu');
    const port = await freePort();
    region = new RegionProcess('eu', port, {
      GEO_TRANSPORT: 'nats',
      GEO_NATS_URL: nats.node('eu').clientUrl,
      GEO_NAMESPACE: namespace,
      GEO_REGIONS: `eu=http://127.0.0.1:${port}`,
    });
    await region.start();
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await region?.stop();
    await nats?.stop();
  });

  /**
   * The writer publishes m0..m(total-1) every 30 ms, not waiting for acks; after the first
   * 40 reach the bystander the nats-server is SIGKILLed, and restarted on the same store
   * 5 s later. Returns what the bystander saw, what the log holds, and the acks.
   */
  async function publishThroughOutage(writerOptions: Partial<GeoClientOptions>, total = 300) {
    const room = `order-${randomUUID().slice(0, 6)}`;
    errorCodes.clear();
    const bystander = await connect('bystander');
    const seen: GeoEnvelope[] = [];
    await bystander.join(room, (event) => seen.push(event));
    const writer = await connect('writer', writerOptions);
    await writer.join(room, () => undefined);

    const acks: Promise<AckFrame>[] = [];
    const publishing = (async () => {
      for (let n = 0; n < total; n++) {
        acks.push(writer.publish(room, 'chat.message', { text: `m${n}` }));
        await sleep(30);
      }
    })();

    await waitFor(() => seen.length >= 40, 'the first 40 messages at the bystander', 10_000);
    const killedAt = Date.now();
    await nats.kill('eu');
    await sleep(5000);
    await nats.restart('eu');
    const downMs = Date.now() - killedAt;
    await publishing;
    const settled = await Promise.allSettled(acks);
    const drainedMs = Date.now() - killedAt;
    const refused = settled.flatMap((result, n) => (result.status === 'rejected' ? [`m${n}: ${(result.reason as Error).message}`] : []));
    await waitFor(
      () => seen.filter((event) => event.sender === 'writer').length >= total,
      `all ${total} messages at the bystander`,
      30_000,
    ).catch(() => undefined);
    await sleep(300); // anything extra (a duplicate) would arrive now

    const order = seen.filter((event) => event.sender === 'writer').map(textOf);
    const transport = await natsTransport({ servers: nats.node('eu').clientUrl, namespace, roomHomes: true })({
      region: 'eu',
      regions: ['eu'],
      dedupWindowMs: 120_000,
      retention: { maxEvents: 10_000, maxAgeMs: 86_400_000 },
    });
    await transport.connect();
    const stored = (await transport.read(globalLog(room), 0, 10_000)).events.map(textOf);
    await transport.close();

    const expected = Array.from({ length: total }, (_, n) => `m${n}`);
    const misplaced = order.filter((text, i) => text !== expected[i]).length;
    const firstOff = order.findIndex((text, i) => text !== expected[i]);
    /** For each message, how many published after it were stored before it (the worst). */
    const index = (text: string) => Number(text.slice(1));
    const overtaken = Math.max(
      0,
      ...stored.map((text, position) => stored.slice(0, position).filter((other) => index(other) > index(text)).length),
    );
    const ackSeqs = settled.map((result) => (result.status === 'fulfilled' ? result.value.seq : null));
    const ackInversions = ackSeqs.filter((seq, n) => n > 0 && seq !== null && ackSeqs[n - 1] !== null && seq <= ackSeqs[n - 1]!).length;
    console.log(
      `publish order (${JSON.stringify(writerOptions)}): ${total} publishes, broker down ${downMs} ms, all settled ${drainedMs} ms after the kill; ` +
        `bystander got ${order.length} (${new Set(order).size} distinct), ${misplaced} out of place` +
        `${firstOff >= 0 ? ` from #${firstOff}: ${order.slice(firstOff, firstOff + 8).join(', ')}` : ''}; most later ones stored before one: ${overtaken}; ` +
        `acks out of order ${ackInversions}; refused ${refused.length}; unacknowledged at the end ${writer.unacknowledged}; ` +
        `geo.error seen ${JSON.stringify(Object.fromEntries(errorCodes))}`,
    );
    const seqs = seen.map((event) => event.seq!);
    return {
      expected,
      order,
      stored,
      refused,
      overtaken,
      ackInversions,
      writer,
      seqsIncrease: seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]),
    };
  }

  it("one client's publishes are appended in exactly the order it published them, none lost or duplicated, across a 5 s broker outage", async () => {
    const result = await publishThroughOutage({});
    expect(result.refused).toEqual([]);
    expect(result.order).toEqual(result.expected); // as the bystander saw them
    expect(result.stored).toEqual(result.expected); // as the log holds them
    expect(result.ackInversions).toBe(0);
    expect(result.writer.unacknowledged).toBe(0);
    expect(result.seqsIncrease).toBe(true);
  }, 120_000);

  it('with maxInFlight: 8, nothing lost or duplicated, and no publish is stored after more than the 7 published right after it', async () => {
    const result = await publishThroughOutage({ maxInFlight: 8 });
    expect(result.refused).toEqual([]);
    expect([...result.stored].sort()).toEqual([...result.expected].sort());
    expect(result.stored).toHaveLength(result.expected.length);
    expect(result.order).toEqual(result.stored);
    expect(result.overtaken).toBeLessThanOrEqual(7);
    expect(result.writer.unacknowledged).toBe(0);
    expect(result.seqsIncrease).toBe(true);
  }, 120_000);
});
