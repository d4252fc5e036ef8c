import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { GeoClient, type GeoClientOptions, type GeoEnvelope } from '@geo-ws/client';
import { waitFor } from '@geo-ws/nest/testing';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { RegionProcess } from '../apps/lab/src/topology/server-process.js';
import { demoToken } from './support/demo-token.js';
import { dropNatsNamespace, testNamespace } from './support/nats-namespace.js';
import { dropRedisNamespace } from './support/redis-namespace.js';

const natsUrl = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';
const brokers: [string, Record<string, string>][] = [
  ['nats', { GEO_TRANSPORT: 'nats', GEO_NATS_URL: natsUrl }],
  ['redis', { GEO_TRANSPORT: 'redis', GEO_REDIS_URL: redisUrl }],
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One received event and how it came (live or replayed from history). */
interface Seen {
  id: string;
  text: string;
  replayed: boolean;
}

/**
 * G6 with sessions saved on membership changes only (#12): a client that lost its state
 * (a new client object, as after a page reload without `storage`) resumes in another
 * region from the session the first region saved. Two region processes of the sample app
 * on one real broker; one of them is SIGKILLed for the case the session cannot be saved.
 */
describe.each(brokers)('a client that lost its state resumes in another region (%s, region processes)', (broker, env) => {
  const namespace = testNamespace(`resume${broker}`);
  let eu: RegionProcess;
  let us: RegionProcess;
  const clients: GeoClient[] = [];

  beforeAll(async () => {
    const [euPort, usPort] = await Promise.all([freePort(), freePort()]);
    const shared = { ...env, GEO_NAMESPACE: namespace, GEO_REGIONS: `eu=http://127.0.0.1:${euPort},us=http://127.0.0.1:${usPort}` };
    eu = new RegionProcess('eu', euPort, shared);
    us = new RegionProcess('us', usPort, shared);
    await Promise.all([eu.start(), us.start()]);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all([eu.stop(), us.stop()]);
    if (broker === 'nats') await dropNatsNamespace(natsUrl, namespace);
    else await dropRedisNamespace(redisUrl, namespace);
  });

  const connect = async (name: string, region: RegionProcess, extra: Partial<GeoClientOptions> = {}) => {
    const client = await GeoClient.connect({
      regions: [{ name: region.region, url: region.url, wsUrl: region.wsUrl }],
      WebSocket: WebSocket,
      token: () => demoToken(region.url, name),
      backoff: { baseMs: 100, maxMs: 500 },
      ...extra,
    });
    clients.push(client);
    return client;
  };
  const join = async (client: GeoClient, room: string) => {
    const seen: Seen[] = [];
    const joined = await client.join(room, (event: GeoEnvelope, delivery) =>
      seen.push({ id: event.event_id, text: (event.data as { text: string }).text, replayed: delivery.replayed }),
    );
    return { joined, seen };
  };
  const publish = async (writer: GeoClient, room: string, texts: string[]) => {
    for (const text of texts) await writer.publish(room, 'chat.message', { text });
  };

  it('closed cleanly in eu: the new client in us gets exactly what it missed (flagged replayed), then live events; nothing twice, nothing lost', async () => {
    const room = `resume-${randomUUID().slice(0, 6)}`;
    const writer = await connect('writer', us);
    await join(writer, room);
    const first = await connect('dana', eu);
    const before = await join(first, room);
    await publish(writer, room, ['b0', 'b1', 'b2']);
    await waitFor(() => before.seen.length === 3, 'three events in eu');
    const sessionId = first.sessionId!;
    first.close(); // the server saves the session at the close, with where the connection is
    await sleep(500);
    await publish(writer, room, ['away0', 'away1']);

    const again = await connect('dana', us, { sessionId });
    expect(again.sessionId).toBe(sessionId);
    const after = await join(again, room);
    expect(after.joined.recovered).toBe(true);
    await waitFor(() => after.seen.length === 2, 'the two missed events');
    await publish(writer, room, ['live']);
    await waitFor(() => after.seen.length === 3, 'a live event');
    expect(after.seen.map(({ text, replayed }) => [text, replayed])).toEqual([
      ['away0', true],
      ['away1', true],
      ['live', false],
    ]);
    const all = [...before.seen, ...after.seen].map((event) => event.id);
    expect(new Set(all).size).toBe(6);
  }, 30_000);

  it('eu killed (no close, nothing saved since the join): the restored client is replayed from the join, so it sees the events it had already seen again, every one flagged replayed, none lost', async () => {
    const room = `crash-${randomUUID().slice(0, 6)}`;
    const writer = await connect('writer', us);
    await join(writer, room);
    const first = await connect('erin', eu, { failoverAfter: 100 });
    const before = await join(first, room);
    await sleep(500); // the join's save
    await publish(writer, room, ['seen0', 'seen1', 'seen2', 'seen3']);
    await waitFor(() => before.seen.length === 4, 'four events in eu');
    const sessionId = first.sessionId!;
    await eu.kill();
    first.close();
    await publish(writer, room, ['missed0', 'missed1']);

    const again = await connect('erin', us, { sessionId });
    expect(again.sessionId).toBe(sessionId);
    const after = await join(again, room);
    expect(after.joined.recovered).toBe(true);
    await waitFor(() => after.seen.length === 6, 'the replay from the position saved at the join');
    await publish(writer, room, ['live']);
    await waitFor(() => after.seen.length === 7, 'a live event');
    expect(after.seen.map(({ text, replayed }) => [text, replayed])).toEqual([
      ['seen0', true],
      ['seen1', true],
      ['seen2', true],
      ['seen3', true],
      ['missed0', true],
      ['missed1', true],
      ['live', false],
    ]);
    // Within the new client nothing is twice; across the two, exactly the four seen before the crash.
    expect(new Set(after.seen.map((event) => event.id)).size).toBe(7);
    expect(after.seen.slice(0, 4).map((event) => event.id)).toEqual(before.seen.map((event) => event.id));
  }, 30_000);
});
