import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient } from '@geo-ws/client';
import { msgpackCodec } from '@geo-ws/client/msgpack';
import { GeoMetrics, globalLog, natsTransport } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { deployRegions, type Deployment } from './support/regions.js';
import { Scrape } from './support/prometheus.js';
import { WsTestClient } from './support/ws-test-client.js';

/**
 * `metrics: true` on two regions (memory network with 20 ms between regions, both apps in
 * this process on prom-client's default registry): `/metrics` parses with a Prometheus
 * text-format parser, and each counter moves when, and only when, its cause happens. A
 * bystander in the same room keeps receiving every event throughout.
 */
describe('metrics: /metrics and what moves it', () => {
  let deployment: Deployment;
  let eu: WsTestClient;
  let us: WsTestClient;
  let bystander: WsTestClient;
  const room = `metrics-${randomUUID().slice(0, 8)}`;
  const published: string[] = [];
  const scrape = () => Scrape.of(`${deployment.region('eu').url}/metrics`);

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], { delayMs: 20, geo: { metrics: true } });
    eu = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'alice' });
    us = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'bob' });
    bystander = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'carol' });
    await Promise.all([eu.join(room), us.join(room), bystander.join(room)]);
  });

  afterAll(async () => {
    for (const client of [eu, us, bystander]) client.close();
    await deployment.close();
  });

  /**
   * Publishes from the eu client, remembers the event for the bystander check, and waits
   * until both regions delivered it (so no observation lands in the next test's scrapes).
   */
  async function publish(text: string, eventId?: string) {
    const answer = await eu.publish('note.add', room, { text }, eventId);
    if (!answer.duplicate) published.push(answer.event_id);
    await Promise.all([us.waitForEvents(room, published.length), bystander.waitForEvents(room, published.length)]);
    return answer;
  }

  it('serves the Prometheus text format with every geo-ws family, on the default registry', async () => {
    const metrics = await scrape();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const names = metrics.families.map((family) => family.name);
    for (const name of [
      'geows_connections',
      'geows_room_memberships',
      'geows_rooms',
      'geows_transport_ready',
      'geows_frames_received_total',
      'geows_frames_sent_total',
      'geows_sent_bytes_total',
      'geows_append_duration_seconds',
      'geows_delivery_lag_seconds',
      'geows_dedup_hits_total',
      'geows_replayed_events_total',
      'geows_joins_total',
      'geows_refusals_total',
      'geows_upgrade_refusals_total',
      'geows_slow_consumer_closes_total',
      'geows_tail_stops_total',
      'geows_state_operations_total',
      'geows_client_events_total',
      'geows_client_anomalies_total',
    ])
      expect(names).toContain(name);
    expect(metrics.family('geows_append_duration_seconds').type).toBe('HISTOGRAM');
    expect(metrics.family('geows_connections').type).toBe('GAUGE');
    expect(metrics.value('geows_connections', { region: 'eu' })).toBe(2);
    expect(metrics.value('geows_connections', { region: 'us' })).toBe(1);
    expect(metrics.value('geows_room_memberships', { region: 'eu' })).toBe(2);
    expect(metrics.value('geows_rooms', { region: 'eu' })).toBe(1);
    expect(metrics.value('geows_transport_ready', { region: 'eu', transport: 'memory' })).toBe(1);
    // The app's registry is prom-client's default one, which GeoMetrics exposes.
    const { register } = await import('prom-client');
    expect(deployment.region('eu').app.get(GeoMetrics).registry).toBe(register);
  });

  it('asks for consistency reports in geo.welcome', () => {
    expect(eu.frames.find((frame) => frame.event === 'geo.welcome')?.data.report_ms).toBe(30_000);
  });

  it('counts frames in and out by event and codec, bytes out, appends and their latency', async () => {
    const before = await scrape();
    await publish('hello');
    await bystander.waitForEvents(room, published.length);
    const after = await scrape();
    const received = { region: 'eu', event: 'note.add', codec: 'json' };
    expect(after.value('geows_frames_received_total', received) - before.value('geows_frames_received_total', received)).toBe(1);
    // The ack to the publisher, and the event to both eu members (one frame built, counted for two).
    const ack = { region: 'eu', event: 'geo.ack', codec: 'json' };
    expect(after.value('geows_frames_sent_total', ack) - before.value('geows_frames_sent_total', ack)).toBe(1);
    expect(after.value('geows_frames_sent_total', received) - before.value('geows_frames_sent_total', received)).toBe(2);
    expect(after.value('geows_sent_bytes_total', { region: 'eu' })).toBeGreaterThan(
      before.value('geows_sent_bytes_total', { region: 'eu' }),
    );
    expect(
      after.count('geows_append_duration_seconds', { region: 'eu' }) - before.count('geows_append_duration_seconds', { region: 'eu' }),
    ).toBe(1);
  });

  it('counts a room event by codec when JSON and MessagePack members share it: one frame per member of each, the lag once', async () => {
    const packer = await GeoClient.connect({
      directoryUrl: deployment.region('eu').url,
      WebSocket,
      pinRegion: 'eu',
      probe: async () => 1,
      query: { name: 'dora' },
      codec: msgpackCodec,
    });
    try {
      const seen: string[] = [];
      await packer.join(room, (event) => void seen.push(event.event_id));
      const before = await scrape();
      const answer = await publish('both codecs');
      await waitFor(() => seen.includes(answer.event_id), 'the MessagePack member to receive the event', 5000);
      const after = await scrape();
      const sent = (codec: string) => {
        const labels = { region: 'eu', event: 'note.add', codec };
        return after.value('geows_frames_sent_total', labels) - before.value('geows_frames_sent_total', labels);
      };
      expect({ json: sent('json'), msgpack: sent('msgpack') }).toEqual({ json: 2, msgpack: 1 });
      const msgpackBytes = { region: 'eu', codec: 'msgpack' };
      expect(after.value('geows_sent_bytes_total', msgpackBytes)).toBeGreaterThan(before.value('geows_sent_bytes_total', msgpackBytes));
      const lagInEu = { origin: 'eu', region: 'eu' };
      expect(after.count('geows_delivery_lag_seconds', lagInEu) - before.count('geows_delivery_lag_seconds', lagInEu)).toBe(1);
    } finally {
      packer.close();
    }
  });

  it('observes the delivery lag once per event per node, by origin and region, across regions', async () => {
    const before = await scrape();
    const lagInUs = { origin: 'eu', region: 'us' };
    await publish('across');
    await us.waitForEvents(room, published.length);
    const after = await scrape();
    expect(after.count('geows_delivery_lag_seconds', lagInUs) - before.count('geows_delivery_lag_seconds', lagInUs)).toBe(1);
    // Two eu members, one observation in eu: per event, not per member.
    const lagInEu = { origin: 'eu', region: 'eu' };
    expect(after.count('geows_delivery_lag_seconds', lagInEu) - before.count('geows_delivery_lag_seconds', lagInEu)).toBe(1);
    // 20 ms between regions: the cross-region observation is above the 10 ms bucket.
    expect(after.bucket('geows_delivery_lag_seconds', '0.01', lagInUs)).toBeLessThan(after.count('geows_delivery_lag_seconds', lagInUs));
  });

  it('counts a retried publish (same event_id) as a dedup hit', async () => {
    const eventId = randomUUID();
    await publish('once', eventId);
    const before = await scrape();
    const retry = await publish('once', eventId);
    expect(retry.duplicate).toBe(true);
    const after = await scrape();
    expect(after.value('geows_dedup_hits_total', { region: 'eu' }) - before.value('geows_dedup_hits_total', { region: 'eu' })).toBe(1);
  });

  it('counts joins answered recovered: false, and the events replayed', async () => {
    const before = await scrape();
    const late = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'dave' });
    const joined = await late.join(room, { since: 1, epoch: 'another-epoch' });
    expect(joined.recovered).toBe(false);
    await late.waitForEvents(room, published.length);
    late.close();
    const after = await scrape();
    const unrecovered = { region: 'eu', recovered: 'false' };
    expect(after.value('geows_joins_total', unrecovered) - before.value('geows_joins_total', unrecovered)).toBe(1);
    expect(
      after.value('geows_replayed_events_total', { region: 'eu' }) - before.value('geows_replayed_events_total', { region: 'eu' }),
    ).toBe(published.length);
  });

  it('counts a live tail that stopped (its room log reset) in the region whose members were told, once', async () => {
    const other = `metrics-reset-${randomUUID().slice(0, 8)}`;
    const member = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'erin' });
    try {
      await member.join(other);
      const before = await scrape();
      await deployment.region('eu').transport.deleteLog(globalLog(other));
      expect((await member.next('geo.error', (data) => data.room === other)).code).toBe('UNAVAILABLE');
      const after = await scrape();
      for (const region of ['eu', 'us']) {
        const stops = after.value('geows_tail_stops_total', { region }) - before.value('geows_tail_stops_total', { region });
        expect({ region, stops }).toEqual({ region, stops: region === 'eu' ? 1 : 0 });
      }
    } finally {
      member.close();
    }
  });

  it('counts refusals by code, events outside the app as "other", and refused upgrades by status and code', async () => {
    const before = await scrape();
    eu.send('no.such-event', { event_id: randomUUID(), room_id: room, data: {} });
    await eu.next('geo.error', (data) => data.code === 'UNKNOWN_EVENT');
    await expect(WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'nobody' })).rejects.toThrow('HTTP 401');
    const after = await scrape();
    const unknown = { region: 'eu', code: 'UNKNOWN_EVENT' };
    expect(after.value('geows_refusals_total', unknown) - before.value('geows_refusals_total', unknown)).toBe(1);
    const other = { region: 'eu', event: 'other' };
    expect(after.value('geows_frames_received_total', other) - before.value('geows_frames_received_total', other)).toBe(1);
    expect(after.samples('geows_frames_received_total', { event: 'no.such-event' })).toHaveLength(0);
    const refused = { region: 'eu', status: '401', code: 'UNAUTHORIZED' };
    expect(after.value('geows_upgrade_refusals_total', refused) - before.value('geows_upgrade_refusals_total', refused)).toBe(1);
  });

  it('adds a client geo.report to the client event and anomaly counters, and refuses a malformed one', async () => {
    const before = await scrape();
    eu.send('geo.report', { events: 10, duplicates: 1, regressions: 2, gaps: 3, future_field: 'ignored' });
    eu.send('geo.report', { events: -1 });
    const error = await eu.next('geo.error', (data) => data.code === 'MALFORMED_FRAME');
    expect(error.message).toContain('events');
    eu.send('geo.report', { events: 1e9 + 1 });
    await eu.next('geo.error', (data) => data.code === 'MALFORMED_FRAME');
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    expect(delta('geows_client_events_total', { region: 'eu' })).toBe(10);
    expect(delta('geows_client_anomalies_total', { region: 'eu', kind: 'duplicate' })).toBe(1);
    expect(delta('geows_client_anomalies_total', { region: 'eu', kind: 'regression' })).toBe(2);
    expect(delta('geows_client_anomalies_total', { region: 'eu', kind: 'gap' })).toBe(3);
    expect(delta('geows_frames_received_total', { region: 'eu', event: 'geo.report' })).toBe(3);
    // No answer frame to a valid report.
    expect(eu.frames.filter((frame) => frame.event === 'geo.report')).toHaveLength(0);
  });

  it('counts session store operations by outcome', async () => {
    const metrics = await scrape();
    // Every connection here started a session (sessions are on by default) and joined: one save each at least.
    expect(metrics.value('geows_state_operations_total', { region: 'eu', operation: 'putSession', outcome: 'ok' })).toBeGreaterThan(0);
  });

  it('kept the bystander receiving every event, in order, throughout', async () => {
    const events = await bystander.waitForEvents(room, published.length);
    expect(events.map((event) => event.event_id)).toEqual(published);
    expect(bystander.isOpen).toBe(true);
  });
});

describe('metrics on NATS JetStream (the real broker on GEO_NATS_URL, a namespace of its own)', () => {
  const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
  const namespace = testNamespace('metrics');
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], { transport: () => natsTransport({ servers, namespace }), geo: { metrics: true } });
  });

  afterAll(async () => {
    await deployment.close();
    await dropNatsNamespace(servers, namespace);
  });

  it('times appends to JetStream, counts its dedup (Nats-Msg-Id) and KV session writes, and the lag eu → us', async () => {
    const room = `nats-${randomUUID().slice(0, 8)}`;
    const eu = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'alice' });
    const us = await WsTestClient.connect(deployment.region('us').wsUrl, { name: 'bob' });
    await Promise.all([eu.join(room), us.join(room)]);
    const scrape = () => Scrape.of(`${deployment.region('us').url}/metrics`);
    const before = await scrape();
    const eventId = randomUUID();
    expect((await eu.publish('note.add', room, { text: 'over nats' }, eventId)).seq).toEqual(expect.any(Number));
    expect((await eu.publish('note.add', room, { text: 'over nats' }, eventId)).duplicate).toBe(true);
    await us.waitForEvents(room, 1);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>, read: 'value' | 'count' = 'value') =>
      after[read](name, labels) - before[read](name, labels);
    expect(after.value('geows_transport_ready', { region: 'us', transport: 'nats' })).toBe(1);
    expect(delta('geows_append_duration_seconds', { region: 'eu' }, 'count')).toBe(2);
    expect(delta('geows_dedup_hits_total', { region: 'eu' })).toBe(1);
    expect(delta('geows_delivery_lag_seconds', { origin: 'eu', region: 'us' }, 'count')).toBe(1);
    expect(after.value('geows_state_operations_total', { region: 'us', operation: 'putSession', outcome: 'ok' })).toBeGreaterThan(0);
    eu.close();
    us.close();
  });
});

describe('the SDK`s geo.report reaches the counters (report_ms: 1000)', () => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['eu'], { geo: { metrics: { reportMs: 1000, path: '/ops/metrics' } } });
  });

  afterAll(async () => {
    await deployment.close();
  });

  it('counts the events the SDK received, and no anomaly in a clean run', async () => {
    const region = deployment.region('eu');
    const scrape = () => Scrape.of(`${region.url}/ops/metrics`);
    const before = await scrape();
    const client = await GeoClient.connect({
      regions: [{ name: 'eu', url: region.url, wsUrl: region.wsUrl }],
      WebSocket,
      probe: async () => 1,
      query: { name: 'sdk-user' },
    });
    try {
      const room = `sdk-${randomUUID().slice(0, 8)}`;
      const received: unknown[] = [];
      await client.join(room, (event) => received.push(event));
      for (let i = 0; i < 3; i++) await client.publish(room, 'note.add', { text: `n${i}` });
      await waitFor(() => received.length === 3, 'three events at the SDK');
      // The SDK reports every report_ms (1 s here): poll the endpoint until its three events are counted.
      const reported = async (labels: Record<string, string>, name = 'geows_client_events_total') =>
        (await scrape()).value(name, labels) - before.value(name, labels);
      const deadline = Date.now() + 5000;
      while ((await reported({ region: 'eu' })) < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await reported({ region: 'eu' })).toBe(3);
      expect(await reported({ region: 'eu', event: 'geo.report' }, 'geows_frames_received_total')).toBeGreaterThan(0);
      const after = await scrape();
      expect(
        after.value('geows_client_anomalies_total', { region: 'eu' }) - before.value('geows_client_anomalies_total', { region: 'eu' }),
      ).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe('metrics off (the default)', () => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await deployRegions(['eu']);
  });

  afterAll(async () => {
    await deployment.close();
  });

  it('serves no /metrics, asks for no reports, provides GeoMetrics as null, and ignores a report', async () => {
    expect((await fetch(`${deployment.region('eu').url}/metrics`)).status).toBe(404);
    const client = await WsTestClient.connect(deployment.region('eu').wsUrl, { name: 'erin' });
    const welcome = client.frames.find((frame) => frame.event === 'geo.welcome')!.data;
    expect(welcome).not.toHaveProperty('report_ms');
    expect(deployment.region('eu').app.get(GeoMetrics)).toBeNull();
    client.send('geo.report', { events: 1 });
    client.send('geo.ping', 'after');
    expect(await client.next('geo.pong')).toBe('after');
    expect(client.errors()).toHaveLength(0);
    client.close();
  });
});
