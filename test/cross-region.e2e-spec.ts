import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { globalLog, type GeoEnvelope } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { WsTestClient } from './support/ws-test-client.js';

const room = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
const seqs = (events: GeoEnvelope[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('cross-region delivery over the memory transport (three apps in one process, 25 ms apart)', () => {
  let deployment: Deployment;
  const clients: WsTestClient[] = [];
  const connect = async (region: string, name: string) => {
    const client = await WsTestClient.connect(deployment.region(region).wsUrl, { name });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    deployment = await deployRegions(['asia', 'eu', 'us'], {
      delayMs: 25,
      geo: { limits: { rate: { perSecond: 10_000, burst: 10_000 } } },
    });
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment.close();
  });

  it('an event published in one region arrives in another with every envelope field, and the publisher gets geo.ack with seq', async () => {
    const name = room('two-regions');
    const alice = await connect('asia', 'alice');
    const bob = await connect('eu', 'bob');
    expect(await alice.join(name)).toMatchObject({ room: name, seq: 0, recovered: true });
    await bob.join(name);

    const before = Date.now();
    const eventId = randomUUID();
    const ack = await alice.publish('note.add', name, { text: 'hello from asia' }, eventId);
    expect(ack).toEqual({ event_id: eventId, seq: 1 });

    const [received] = await bob.waitForEvents(name, 1);
    expect(received).toEqual({
      event_id: eventId,
      room_id: name,
      type: 'note.add',
      sender: 'alice',
      timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      region: 'asia',
      seq: 1,
      data: { text: 'hello from asia' },
    });
    expect(Date.parse(received.timestamp)).toBeGreaterThanOrEqual(before - 5);
    // The publisher is a member too: it gets its own event through the same ordered stream.
    expect(await alice.waitForEvents(name, 1)).toEqual([received]);
  });

  it('handlers see the stamped envelope, the principal and the connection through the parameter decorators', async () => {
    const name = room('params');
    const carol = await connect('us', 'carol');
    await carol.join(name);
    const eventId = randomUUID();
    await carol.publish('note.add', name, { text: 'params' }, eventId);
    const seen = deployment.region('us').gateway.seen.find((entry) => entry.envelope?.event_id === eventId)!;
    expect(seen.envelope).toMatchObject({ event_id: eventId, room_id: name, type: 'note.add', sender: 'carol', region: 'us' });
    expect(seen.envelope).not.toHaveProperty('seq');
    expect(seen.user).toEqual({ id: 'carol' });
    expect(seen.connection?.rooms.has(name)).toBe(true);
  });

  it('user interceptors run around geo handlers, and their result is what is appended', async () => {
    const name = room('shout');
    const client = await connect('eu', 'dave');
    await client.join(name);
    await client.publish('note.shout', name, { text: 'quiet' });
    const [event] = await client.waitForEvents(name, 1);
    expect(event.data).toEqual({ text: 'QUIET' });
  });

  it('G2: three publishers in three regions, two members per region: everyone gets the same events in the same order', async () => {
    const name = room('concurrent');
    const members: WsTestClient[] = [];
    for (const region of ['asia', 'eu', 'us']) {
      for (const n of [1, 2]) members.push(await connect(region, `${region}-member-${n}`));
    }
    for (const member of members) await member.join(name);
    const publishers = [members[0], members[2], members[4]];
    const perPublisher = 40;
    const acks = await Promise.all(
      publishers.map(async (publisher, p) => {
        // Sent back to back, without awaiting each ack: the server must keep their order.
        const pending = [];
        for (let n = 0; n < perPublisher; n++) pending.push(publisher.publish('note.add', name, { text: `p${p}-${n}` }));
        return Promise.all(pending);
      }),
    );
    const total = perPublisher * publishers.length;
    for (const member of members) await member.waitForEvents(name, total);
    const reference = members[0].events(name);
    expect(seqs(reference)).toEqual(range(1, total));
    for (const member of members) expect(member.events(name)).toEqual(reference);
    for (const [p, publisherAcks] of acks.entries()) {
      expect(publisherAcks.every((ack) => typeof ack.seq === 'number')).toBe(true);
      // One publisher's frames keep their order in the log.
      const own = reference.filter((event) => (event.data as { text: string }).text.startsWith(`p${p}-`));
      expect(own.map((event) => (event.data as { text: string }).text)).toEqual(range(0, perPublisher - 1).map((n) => `p${p}-${n}`));
    }
  });

  it('G3: a client that rejoins on the other region with since gets exactly the missed events, then live ones', async () => {
    const name = room('resume');
    const publisher = await connect('us', 'publisher');
    await publisher.join(name);
    const traveller = await connect('asia', 'traveller');
    const joined = await traveller.join(name);
    for (let n = 0; n < 5; n++) await publisher.publish('note.add', name, { text: `before-${n}` });
    const seen = await traveller.waitForEvents(name, 5);
    const last = seen.at(-1)!.seq!;
    traveller.close();

    for (let n = 0; n < 7; n++) await publisher.publish('note.add', name, { text: `missed-${n}` });
    const back = await connect('eu', 'traveller');
    const rejoined = await back.join(name, { since: last, epoch: joined.epoch });
    expect(rejoined).toMatchObject({ room: name, seq: 12, epoch: joined.epoch, recovered: true });
    await back.waitForEvents(name, 7);
    for (let n = 0; n < 3; n++) await publisher.publish('note.add', name, { text: `live-${n}` });
    const after = await back.waitForEvents(name, 10);
    expect(seqs(after)).toEqual(range(6, 15));
    expect(after.map((event) => (event.data as { text: string }).text)).toEqual([
      ...range(0, 6).map((n) => `missed-${n}`),
      ...range(0, 2).map((n) => `live-${n}`),
    ]);
    // The replay came after geo.joined, never before it.
    const frames = back.frames.map((frame) => frame.event);
    expect(frames.indexOf('geo.joined')).toBeLessThan(frames.indexOf('note.add'));
  });

  it('G3: joining with since while the room is busy hands off from replay to live with no gap and no duplicate', async () => {
    const name = room('handoff');
    const publisher = await connect('eu', 'busy-publisher');
    await publisher.join(name);
    for (let n = 0; n < 50; n++) await publisher.publish('note.add', name, { text: `warmup-${n}` });
    const total = 250;
    const publishing = (async () => {
      for (let n = 50; n < total; n += 10) {
        const batch = range(n, n + 9).map((i) => publisher.publish('note.add', name, { text: `n-${i}` }));
        await Promise.all(batch);
      }
    })();
    // Joiners arrive in every region while events keep flowing, each resuming from another point.
    const joiners: { client: WsTestClient; since: number }[] = [];
    for (const [i, region] of ['asia', 'eu', 'us', 'asia', 'us'].entries()) {
      await new Promise((resolve) => setTimeout(resolve, 15));
      const client = await connect(region, `joiner-${i}`);
      const since = i * 10;
      await client.join(name, { since });
      joiners.push({ client, since });
    }
    await publishing;
    for (const { client, since } of joiners) {
      const events = await client.waitForEvents(name, total - since);
      expect(seqs(events)).toEqual(range(since + 1, total));
    }
  });

  it('G3: resuming against another epoch or past retention says recovered: false', async () => {
    const name = room('epoch');
    const client = await connect('eu', 'epoch-user');
    await client.join(name);
    await client.publish('note.add', name, { text: 'one' });
    await client.publish('note.add', name, { text: 'two' });
    client.send('geo.leave', { room: name });
    await client.next('geo.left');
    const stale = await client.join(name, { since: 1, epoch: 'an-epoch-that-never-was' });
    expect(stale).toMatchObject({ recovered: false, seq: 2 });
  });

  it('G3: a room log reset under live members: they are told (UNAVAILABLE) and a rejoin says recovered: false', async () => {
    const name = room('reset');
    const member = await connect('us', 'reset-member');
    const joined = await member.join(name);
    await member.publish('note.add', name, { text: 'old history' });
    await member.waitForEvents(name, 1);
    await deployment.region('asia').transport.deleteLog(globalLog(name));
    const notice = await member.next('geo.error', (data) => data.room === name);
    expect(notice.code).toBe('UNAVAILABLE');
    const rejoined = await member.join(name, { since: 1, epoch: joined.epoch });
    expect(rejoined.recovered).toBe(false);
    expect(rejoined.epoch).not.toBe(joined.epoch);
  });

  it('G1: a retried event_id is stored once and acked with the original seq, even from another region', async () => {
    const name = room('retry');
    const first = await connect('asia', 'retrier');
    const second = await connect('us', 'retrier');
    await first.join(name);
    await second.join(name);
    const eventId = randomUUID();
    const original = await first.publish('note.add', name, { text: 'once' }, eventId);
    await first.publish('note.add', name, { text: 'another' });
    const retry = await second.publish('note.add', name, { text: 'once' }, eventId);
    expect(retry).toEqual({ event_id: eventId, seq: original.seq, duplicate: true });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(first.events(name).filter((event) => event.event_id === eventId)).toHaveLength(1);
    const log = await deployment.region('eu').transport.read(globalLog(name), 0, 100);
    expect(log.events.map((event) => event.event_id).filter((id) => id === eventId)).toHaveLength(1);
  });

  it('G5: regional events stay in their region; ephemeral events reach every region with seq null and are not stored', async () => {
    const name = room('scopes');
    const asia1 = await connect('asia', 'asia-1');
    const asia2 = await connect('asia', 'asia-2');
    const eu = await connect('eu', 'eu-1');
    for (const client of [asia1, asia2, eu]) await client.join(name);
    expect(await asia1.next('geo.joined', (data) => data.room === name && data.scope === 'regional')).toMatchObject({
      seq: 0,
      recovered: true,
    });

    const ack = await asia1.publish('note.local', name, { text: 'asia only' });
    expect(ack.seq).toBe(1);
    const [local] = await asia2.waitForEvents(name, 1);
    expect(local).toMatchObject({ type: 'note.local', scope: 'regional', region: 'asia', seq: 1 });

    const typing = await eu.publish('note.typing', name, {});
    expect(typing.seq).toBeNull();
    await waitFor(() => asia1.events(name, 'note.typing').length === 1, 'typing in asia');
    expect(asia1.events(name, 'note.typing')[0]).toMatchObject({ sender: 'eu-1', region: 'eu', seq: null });

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(eu.events(name, 'note.local')).toEqual([]); // the regional note never left asia
    const history = await deployment.region('eu').transport.read(globalLog(name), 0, 10);
    expect(history.events).toEqual([]);
  });

  it('fan-out: one live tail per (node, room), however many local clients are in it', async () => {
    const name = room('fanout');
    const eu = deployment.region('eu').server;
    const before = eu.feedCount;
    const crowd = await Promise.all(Array.from({ length: 25 }, (_, i) => connect('eu', `crowd-${i}`)));
    for (const client of crowd) await client.join(name);
    // One feed for the room's global log and one for its regional log (the fixture has a regional handler).
    expect(eu.feedCount - before).toBe(2);
    const speaker = await connect('us', 'speaker');
    await speaker.join(name);
    await speaker.publish('note.add', name, { text: 'to the crowd' });
    for (const client of crowd) await client.waitForEvents(name, 1);
    for (const client of crowd) client.close();
    await waitFor(() => eu.feedCount === before, 'the feeds to close after the last member left');
  });
});
