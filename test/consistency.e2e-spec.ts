import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type Anomaly, type GeoRegion } from '@geo-ws/client';
import { memoryTransport, natsTransport, redisTransport, type GeoTransportFactory, type GeoMemoryNetwork } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * Consistency tracked by the client against real regions (three Nest apps in this
 * process, real sockets, real brokers): `geo.joined` says `contiguous` as the transport
 * numbers its seqs, and a normal cross-region run (publishes from every region at once,
 * a client moving region and resuming mid-run) counts no anomaly.
 */

const natsUrl = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
const natsNamespace = testNamespace('consistency');
const redisNamespace = testNamespace('consistency');
const REGIONS = ['asia', 'eu', 'us'];

const transports: [name: string, contiguous: boolean, transport: (region: string, network: GeoMemoryNetwork) => GeoTransportFactory][] = [
  ['memory', true, (_region, network) => memoryTransport({ network })],
  ['redis', true, () => redisTransport({ primary: redisUrl, namespace: redisNamespace })],
  ['nats', false, () => natsTransport({ servers: natsUrl, namespace: natsNamespace })],
];

describe.each(transports)('client consistency against three regions (%s)', (name, contiguous, transport) => {
  let deployment: Deployment;
  const clients: GeoClient[] = [];

  beforeAll(async () => {
    deployment = await deployRegions(REGIONS, { transport, geo: { limits: { rate: { perSecond: 1000, burst: 1000 } } } });
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment?.close();
    if (name === 'nats') await dropNatsNamespace(natsUrl, natsNamespace);
    if (name === 'redis') await dropRedisNamespace(redisUrl, redisNamespace);
  });

  const directory = (): GeoRegion[] => deployment.regions.map((region) => ({ name: region.name, url: region.url, wsUrl: region.wsUrl }));

  const connect = async (user: string, region: string): Promise<{ client: GeoClient; anomalies: Anomaly[] }> => {
    const client = await GeoClient.connect({
      regions: directory(),
      regionOrder: [region, ...REGIONS.filter((other) => other !== region)],
      WebSocket,
      probe: async () => 1,
      query: { name: user },
      backoff: { baseMs: 50, maxMs: 400 },
    });
    clients.push(client);
    const anomalies: Anomaly[] = [];
    client.on('anomaly', (anomaly) => anomalies.push(anomaly));
    return { client, anomalies };
  };

  it(`geo.joined says contiguous: ${contiguous} for the global and the regional log, on the wire and to the SDK`, async () => {
    const room = `contig-${randomUUID().slice(0, 6)}`;
    const raw = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'wire' });
    try {
      const global = await raw.join(room);
      const regional = await raw.next('geo.joined', (data) => data.room === room && data.scope === 'regional');
      for (const joined of [global, regional]) {
        if (contiguous) expect(joined).toMatchObject({ contiguous: true });
        else expect(joined).not.toHaveProperty('contiguous');
      }
    } finally {
      raw.close();
    }
    const { client } = await connect('sdk', 'us');
    const joined = await client.join(room, () => undefined);
    expect(joined.contiguous === true).toBe(contiguous);
  }, 30_000);

  it('a normal run: publishes from every region, a client moving region mid-run; every event delivered once, in order; no anomaly', async () => {
    const room = `run-${randomUUID().slice(0, 6)}`;
    const members = await Promise.all(REGIONS.map((region) => connect(`member-${region}`, region)));
    const received = members.map(() => [] as number[]);
    await Promise.all(members.map(({ client }, i) => client.join(room, (event) => received[i].push(event.seq!))));
    // Another room's events between asia's: on NATS (one stream sequence for all rooms) the room's seqs skip numbers.
    const side = `side-${randomUUID().slice(0, 6)}`;
    let sideEvents = 0;
    await members[0].client.join(side, () => sideEvents++);
    const perMember = 20;
    const publishing = members.map(async ({ client }, i) => {
      for (let n = 0; n < perMember; n++) {
        await client.publish(room, 'note.add', { text: `${REGIONS[i]}-${n}` });
        if (i === 0) await client.publish(side, 'note.add', { text: `side-${n}` });
        // Half-way, asia's member moves to eu and resumes the room there.
        if (i === 0 && n === perMember / 2) client.moveTo('eu');
      }
    });
    await Promise.all(publishing);
    const total = perMember * members.length;
    await waitFor(
      () => received.every((seqs) => seqs.length === total) && sideEvents === perMember,
      `${total} events at every member`,
      15_000,
    );
    expect(members[0].client.region).toBe('eu');
    for (const seqs of received) {
      expect(seqs).toEqual(received[0]); // one order for everyone
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    }
    const consecutive = received[0].every((seq, i) => seq === received[0][0] + i);
    expect(consecutive).toBe(contiguous); // NATS skipped numbers, and no gap was counted for them
    for (const [i, { client, anomalies }] of members.entries()) {
      expect(anomalies).toEqual([]);
      expect(client.consistency).toEqual({ events: total + (i === 0 ? perMember : 0), duplicates: 0, regressions: 0, gaps: 0 });
    }
  }, 60_000);
});
