import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type GeoEnvelope } from '@geo-ws/client';
import { natsTransport, globalLog } from '@geo-ws/nest';
import { checkLogs } from './support/checker.js';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { demoToken } from './support/demo-token.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const namespace = testNamespace('failover');
const REGIONS = ['asia', 'eu', 'us'];

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * One process per region on NATS; SDK clients in every region publish continuously; the
 * us process is SIGKILLed mid-stream. Its clients move on and resume; at the end every
 * client holds the same complete log and every publish was applied exactly once.
 */
describe('region killed mid-stream (separate processes, NATS JetStream)', () => {
  const regions: RegionProcess[] = [];
  const clients: GeoClient[] = [];

  beforeAll(async () => {
    const ports = await Promise.all(REGIONS.map(() => freePort()));
    const directory = REGIONS.map((name, i) => `${name}=http://127.0.0.1:${ports[i]}`).join(',');
    for (const [i, name] of REGIONS.entries()) {
      regions.push(
        new RegionProcess(name, ports[i], {
          GEO_TRANSPORT: 'nats',
          GEO_NATS_URL: servers,
          GEO_NAMESPACE: namespace,
          GEO_REGIONS: directory,
        }),
      );
    }
    await Promise.all(regions.map((region) => region.start()));
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all(regions.map((region) => region.stop()));
    await dropNatsNamespace(servers, namespace);
  });

  it('its clients fail over and resume; logs are identical and complete; every publish applied once', async () => {
    const room = `kill-${randomUUID().slice(0, 6)}`;
    const received = new Map<GeoClient, GeoEnvelope[]>();
    for (const [r, home] of REGIONS.entries()) {
      for (let n = 0; n < 4; n++) {
        const client = await GeoClient.connect({
          directoryUrl: regions[0].url,
          WebSocket: WebSocket,
          regionOrder: [home, ...REGIONS.filter((_, i) => i !== r)],
          token: () => demoToken(regions[0].url, `${home}-${n}`),
          backoff: { baseMs: 100, maxMs: 1000 },
          failoverAfter: 2,
        });
        const events: GeoEnvelope[] = [];
        received.set(client, events);
        await client.join(room, (event) => events.push(event));
        clients.push(client);
      }
    }
    const usClients = clients.filter((client) => client.region === 'us');
    expect(usClients).toHaveLength(4);

    const perClient = 15;
    let killedAt = 0;
    const movedAfter: number[] = [];
    for (const client of usClients) {
      client.on('region', ({ region }) => {
        if (killedAt && region !== 'us') movedAfter.push(Date.now() - killedAt);
      });
    }
    const published = new Set<string>();
    const publishing = clients.map(async (client, c) => {
      for (let n = 0; n < perClient; n++) {
        const eventId = randomUUID();
        published.add(eventId);
        await client.publish(room, 'chat.message', { text: `c${c} n${n}` }, eventId);
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    killedAt = Date.now();
    await regions[2].stop('SIGKILL');
    await Promise.all(publishing);

    const total = clients.length * perClient;
    const deadline = Date.now() + 20_000;
    while ([...received.values()].some((events) => events.length < total) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));

    const transport = await natsTransport({ servers, namespace, roomHomes: true })({
      region: 'eu',
      regions: REGIONS,
      dedupWindowMs: 120_000,
      retention: { maxEvents: 10_000, maxAgeMs: 86_400_000 },
    });
    await transport.connect();
    const log = (await transport.read(globalLog(room), 0, 10_000)).events;
    await transport.close();
    const report = checkLogs(log, [...received.values()]);
    console.log(
      `region kill: ${clients.length} clients, ${total} publishes; failover time p50 ${percentile(movedAfter, 50)} ms, p99 ${percentile(movedAfter, 99)} ms; checker ${JSON.stringify(report)}`,
    );
    expect(movedAfter).toHaveLength(usClients.length);
    expect(usClients.every((client) => client.region !== 'us')).toBe(true);
    expect(log).toHaveLength(total);
    expect(new Set(log.map((event) => event.event_id))).toEqual(published);
    expect(report).toEqual({ clients: clients.length, events: total, lost: 0, duplicated: 0, reordered: 0, divergent: 0 });
  }, 90_000);

  it('drain: SIGTERM to a region; its clients leave on the notice before the process exits, move, and lose nothing', async () => {
    const room = `drain-${randomUUID().slice(0, 6)}`;
    const eu = regions[1];
    const onEu = clients.filter((client) => client.region === 'eu');
    expect(onEu.length).toBeGreaterThan(0);
    const received = new Map<GeoClient, GeoEnvelope[]>();
    for (const client of clients) {
      const events: GeoEnvelope[] = [];
      received.set(client, events);
      await client.join(room, (event) => events.push(event));
    }
    // Leaving on the drain notice is made before break: the client connects to another region
    // and switches at its welcome (the `region` event), never leaving the state `open`.
    const leftAt = new Map<GeoClient, number>();
    const movedTo = new Map<GeoClient, string>();
    const states: string[] = [];
    const reconnects: number[] = [];
    for (const client of onEu) {
      client.on(
        'region',
        ({ region }) => region !== 'eu' && !leftAt.has(client) && (leftAt.set(client, Date.now()), movedTo.set(client, region)),
      );
      client.on('state', (state) => states.push(state));
      client.on('reconnect', ({ code }) => reconnects.push(code));
    }
    const perClient = 10;
    const publishing = clients.map(async (client, c) => {
      for (let n = 0; n < perClient; n++) {
        await client.publish(room, 'chat.message', { text: `c${c} n${n}` });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await eu.stop('SIGTERM');
    const exitedAt = Date.now();
    await Promise.all(publishing);
    const total = clients.length * perClient;
    const deadline = Date.now() + 20_000;
    while ([...received.values()].some((events) => events.length < total) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(`drain: ${onEu.length} clients switched ${[...leftAt.values()].map((at) => exitedAt - at).join(', ')} ms before eu exited`);
    expect(leftAt.size).toBe(onEu.length);
    // The region exits once its clients left (not at its grace period's 1012), so each was
    // welcomed elsewhere first, with no gap: no other state than open, no reconnect.
    for (const at of leftAt.values()) expect(at).toBeLessThanOrEqual(exitedAt);
    expect(movedTo.size).toBe(onEu.length);
    expect([states, reconnects]).toEqual([[], []]);
    const reference = [...received.values()][0];
    expect(reference).toHaveLength(total);
    for (const events of received.values()) expect(events).toEqual(reference);
  }, 90_000);
});
