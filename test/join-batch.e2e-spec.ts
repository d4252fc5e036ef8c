import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type GeoEnvelope } from '@geo-ws/client';
import { natsTransport, redisTransport, type GeoTransportFactory, type GeoWsModuleOptions } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';
import { WsTestClient } from './support/ws-test-client.js';

const natsUrl = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOMS = 30;

/** `?name=limited` may use rooms `ok-*` only; everyone else every room. */
const authenticate: GeoWsModuleOptions['authenticate'] = ({ url }) => {
  const name = url.searchParams.get('name') ?? 'anonymous';
  return { id: name, ...(name === 'limited' ? { rooms: ['ok-*'] } : {}) };
};

/** The `geo.join` frames every SDK socket sent (to prove a reconnect sends one batch). */
const sentJoins: unknown[] = [];
class JoinSniffingWebSocket extends WebSocket {
  override send(data: unknown, ...rest: unknown[]): void {
    const frame = typeof data === 'string' ? (JSON.parse(data) as { event: string; data: unknown }) : undefined;
    if (frame?.event === 'geo.join') sentJoins.push(frame.data);
    (super.send as (...args: unknown[]) => void)(data, ...rest);
  }
}

const brokers: [string, (namespace: string) => GeoTransportFactory, (namespace: string) => Promise<void>][] = [
  ['nats', (namespace) => natsTransport({ servers: natsUrl, namespace }), (namespace) => dropNatsNamespace(natsUrl, namespace)],
  ['redis', (namespace) => redisTransport({ primary: redisUrl, namespace }), (namespace) => dropRedisNamespace(redisUrl, namespace)],
];

/**
 * Issue 22, point 2: `geo.join { rooms }` rejoins every room of a client in one round trip,
 * on the real brokers. Every room comes back with exactly what it missed, a bystander keeps
 * receiving, single joins still work, and a forbidden room is refused alone.
 */
describe.each(brokers)('rejoining many rooms in one frame (%s)', (broker, transport, drop) => {
  const namespace = testNamespace(`batch${broker}`);
  let deployment: Deployment;
  const raw: WsTestClient[] = [];
  const sdk: GeoClient[] = [];
  const rooms = (prefix: string, count = ROOMS) => Array.from({ length: count }, (_, i) => `${prefix}-${i}-${randomUUID().slice(0, 4)}`);
  const connect = async (name: string, region = 'eu') => {
    const client = await WsTestClient.connect(deployment.region(region).wsUrl, { name });
    raw.push(client);
    return client;
  };
  const texts = (events: GeoEnvelope[]) => events.map((event) => (event.data as { text: string }).text);

  beforeAll(async () => {
    deployment = await deployRegions(['eu', 'us'], {
      transport: () => transport(namespace),
      geo: { authenticate, limits: { rate: { perSecond: 1000, burst: 1000 } } },
    });
  }, 60_000);

  afterAll(async () => {
    for (const client of sdk) client.close();
    for (const client of raw) client.close();
    await deployment.close();
    await drop(namespace);
  });

  it('geo.welcome lists join.rooms', async () => {
    const client = await connect('welcome');
    expect(client.frames[0]).toMatchObject({ event: 'geo.welcome', data: { features: ['join.rooms'] } });
  });

  it('one batch brings back 30 rooms with what each missed, in order, once; a bystander keeps receiving; a publish sent after it is accepted', async () => {
    const names = rooms('many');
    const writer = await connect('writer');
    const first = await connect('mover');
    const bystander = await connect('bystander', 'us');
    const watched = names[7];
    expect(await bystander.join(watched)).toMatchObject({ room: watched });
    const positions = new Map<string, { since: number; epoch: string }>();
    for (const room of names) {
      await writer.join(room);
      const joined = await first.join(room);
      await writer.publishUntilAcked('note.add', room, { text: `${room} before` });
      const [seen] = await first.waitForEvents(room, 1);
      positions.set(room, { since: seen.seq!, epoch: joined.epoch });
    }
    first.close();
    // Missed: two events per room while the client is away.
    for (const room of names) for (const n of [1, 2]) await writer.publishUntilAcked('note.add', room, { text: `${room} missed ${n}` });

    const back = await connect('mover', 'us');
    back.send('geo.join', { rooms: names.map((room) => ({ room, ...positions.get(room) })) });
    // Sent behind the batch: it runs once every room is answered, so the room is joined by then.
    const ack = back.publish('note.add', names[ROOMS - 1], { text: 'right after the batch' });
    // Live traffic in the watched room during the batch.
    const live = writer.publishUntilAcked('note.add', watched, { text: 'live during the batch' });
    for (const room of names)
      expect(await back.next('geo.joined', (data) => data.room === room && !data.scope, 15_000)).toMatchObject({ recovered: true });
    expect((await ack).seq).toEqual(expect.any(Number));
    await live;

    const expectedOf = (room: string) => [
      `${room} missed 1`,
      `${room} missed 2`,
      ...(room === watched ? ['live during the batch'] : []),
      ...(room === names[ROOMS - 1] ? ['right after the batch'] : []),
    ];
    for (const room of names) await back.waitForEvents(room, expectedOf(room).length);
    await new Promise((resolve) => setTimeout(resolve, 300)); // time for a duplicate to show
    for (const room of names) {
      const events = back.events(room);
      const expected = expectedOf(room);
      expect(texts(events)).toEqual(expected);
      expect(events.map((event) => event.seq)).toEqual([...events.map((event) => event.seq)].sort((a, b) => a! - b!));
    }
    await bystander.waitForEvents(watched, 4);
    expect(texts(bystander.events(watched))).toEqual([
      `${watched} before`,
      `${watched} missed 1`,
      `${watched} missed 2`,
      'live during the batch',
    ]);
    expect(back.errors()).toEqual([]);
  }, 60_000);

  it('a forbidden room is refused alone (FORBIDDEN, with its room); the others join; single joins work as before', async () => {
    const [allowed, other] = [rooms('ok', 1)[0], rooms('ok', 1)[0]];
    const forbidden = rooms('secret', 1)[0];
    const client = await connect('limited');
    client.send('geo.join', { rooms: [{ room: allowed }, { room: forbidden }, { room: other }] });
    const refusal = await client.next('geo.error', (data) => data.room === forbidden);
    expect(refusal.code).toBe('FORBIDDEN');
    for (const room of [allowed, other]) await client.next('geo.joined', (data) => data.room === room && !data.scope);
    expect((await client.publish('note.add', other, { text: 'joined' })).seq).toEqual(expect.any(Number));
    expect((await client.publish('note.add', forbidden, { text: 'not joined' })).code).toBe('NOT_JOINED');
    // An old-style client: one geo.join per room, answered as always.
    const single = rooms('ok', 1)[0];
    expect(await client.join(single)).toMatchObject({ room: single, recovered: true });
    client.send('geo.join', { room: forbidden });
    expect((await client.next('geo.error', (data) => data.room === forbidden)).code).toBe('FORBIDDEN');
    expect(client.errors().map((error) => error.code)).toEqual(['FORBIDDEN', 'NOT_JOINED', 'FORBIDDEN']);
  }, 30_000);

  it('a bad batch is refused whole (INVALID_ENVELOPE, no room): empty, duplicated, too long', async () => {
    const client = await connect('careless');
    const [room] = rooms('dup', 1);
    client.send('geo.join', { rooms: [] });
    client.send('geo.join', { rooms: [{ room }, { room, since: 0 }] });
    client.send('geo.join', { rooms: Array.from({ length: 101 }, (_, i) => ({ room: `${room}-${i}` })) });
    await waitFor(() => client.errors().length === 3, 'three refusals');
    expect(client.errors().map((error) => [error.code, 'room' in error])).toEqual([
      ['INVALID_ENVELOPE', false],
      ['INVALID_ENVELOPE', false],
      ['INVALID_ENVELOPE', false],
    ]);
    expect(client.frames.filter((frame) => frame.event === 'geo.joined')).toEqual([]);
  });

  it('the SDK: after its region drains, a client in 30 rooms resumes them all with one frame in the other region', async () => {
    const names = rooms('sdk');
    const directory = deployment.regions.map(({ name, url, wsUrl }) => ({ name, url, wsUrl }));
    const client = await GeoClient.connect({
      regions: directory,
      regionOrder: ['us', 'eu'],
      WebSocket: JoinSniffingWebSocket,
      probe: async () => 1,
      query: { name: 'sdk' },
      backoff: { baseMs: 50, maxMs: 400 },
    });
    sdk.push(client);
    const seen = new Map<string, string[]>(names.map((room) => [room, []]));
    for (const room of names) await client.join(room, (event) => seen.get(room)!.push((event.data as { text: string }).text));
    const writer = await connect('sdk-writer', 'eu');
    for (const room of names) await writer.join(room);
    for (const room of names) await writer.publishUntilAcked('note.add', room, { text: 'one' });
    await waitFor(() => names.every((room) => seen.get(room)!.length === 1), 'one event per room');
    sentJoins.length = 0;
    // us drains: its clients are told to go to eu, and must resume every room there.
    const draining = deployment.region('us').app.close();
    await waitFor(() => sentJoins.length > 0 && client.state === 'open', 'the rejoin in eu', 15_000);
    for (const room of names) await writer.publishUntilAcked('note.add', room, { text: 'two' });
    await waitFor(() => names.every((room) => seen.get(room)!.length === 2), 'the second event everywhere', 15_000);
    await draining;
    expect(sentJoins).toHaveLength(1);
    expect((sentJoins[0] as { rooms: { room: string; since: number; epoch: string }[] }).rooms.map((entry) => entry.room)).toEqual(names);
    for (const room of names) expect(seen.get(room)).toEqual(['one', 'two']);
    expect(client.consistency).toMatchObject({ duplicates: 0, regressions: 0 });
  }, 60_000);
});
