import { afterEach, describe, expect, it } from '@jest/globals';
import { GeoClient, type GeoClientEvents, type GeoClientOptions } from '../geo-client.js';
import type { GeoEnvelope, GeoRegion } from '../protocol.js';
import { FakeLogs, FakeRegion, TEST_CLIENT_OPTIONS, testEnvelope as envelope, until, within } from '../testing/index.js';

/**
 * GeoClient's rooms against fake regions (testing/fake-region.ts): join, resume with
 * since/epoch on every new connection, gaps, and what it does with events the server
 * sends twice or out of order.
 */

describe('GeoClient rooms (fake regions over a real WebSocket)', () => {
  const fakes: FakeRegion[] = [];
  let client: GeoClient | undefined;

  const region = async (name = 'eu', logs?: FakeLogs): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name, logs });
    fakes.push(fake);
    return fake;
  };

  const connect = async (regions: GeoRegion[], options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    client = await within(
      GeoClient.connect({
        regions,
        regionOrder: regions.map((candidate) => candidate.name),
        ...TEST_CLIENT_OPTIONS,
        ...options,
      }),
      3000,
      'connect()',
    );
    return client;
  };

  /** Joins `room` and collects what its handler receives. */
  const joinCollecting = async (room: string, position?: { since?: number; epoch?: string }) => {
    const received: GeoEnvelope[] = [];
    const joined = await within(
      client!.join(room, (event) => received.push(event), position),
      2000,
      `join ${room}`,
    );
    return { joined, received, seqs: () => received.map((event) => event.seq) };
  };

  /** Cuts the connection and waits until the client is joined again. */
  const reconnect = async (fake: FakeRegion): Promise<void> => {
    const joins = fake.joinRequests.length;
    fake.dropAll();
    await until(() => fake.joinRequests.length > joins && client!.state === 'open', 'the rejoin');
  };

  afterEach(async () => {
    client?.close();
    client = undefined;
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  it('a first join asks for live events only; geo.joined resolves it; events arrive in order, the own publishes too', async () => {
    const eu = await region();
    eu.emit('r'); // before the join: not delivered
    await connect(eu.regions);
    const { joined, seqs, received } = await joinCollecting('r');
    expect(joined).toEqual({ room: 'r', seq: 1, epoch: 'e1', recovered: true });
    expect(eu.joinRequests).toEqual([{ room: 'r' }]);
    eu.emit('r', { text: 'hello' });
    await client!.publish('r', 'chat.message', { text: 'mine' }, 'own1');
    await until(() => received.length === 2, 'two events');
    expect(seqs()).toEqual([2, 3]);
    expect(received.map((event) => [event.event_id, event.data])).toEqual([
      ['x2', { text: 'hello' }],
      ['own1', { text: 'mine' }],
    ]);
  });

  it('after a reconnect every room is joined again with since (the last seq delivered) and epoch; what was missed arrives once, in order', async () => {
    const eu = await region();
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby');
    const other = await joinCollecting('other');
    eu.emit('lobby');
    eu.emit('lobby');
    await until(() => lobby.received.length === 2, 'two lobby events');
    await eu.away(client!);
    eu.emit('lobby'); // missed while away
    eu.emit('other');
    eu.resume();
    await until(() => eu.joinRequests.length === 4 && lobby.received.length === 3 && other.received.length === 1, 'the resume');
    expect(eu.joinRequests.slice(2).sort((a, b) => a.room.localeCompare(b.room))).toEqual([
      { room: 'lobby', since: 2, epoch: 'e1' },
      { room: 'other', since: 0, epoch: 'e1' },
    ]);
    expect(lobby.seqs()).toEqual([1, 2, 3]);
    expect(other.seqs()).toEqual([1]);
  });

  it('a server that lists join.rooms gets every room back in one geo.join { rooms }; a refused room is retried alone', async () => {
    const eu = await region();
    eu.features = ['join.rooms'];
    await connect(eu.regions);
    const names = ['a', 'b', 'c', 'd', 'e'];
    const rooms = new Map<string, Awaited<ReturnType<typeof joinCollecting>>>();
    for (const name of names) rooms.set(name, await joinCollecting(name));
    expect(eu.batchJoins).toEqual([]); // joins the app asks for go one by one, as they come
    for (const name of names) eu.emit(name);
    await until(() => names.every((name) => rooms.get(name)!.received.length === 1), 'one event per room');
    await eu.away(client!);
    for (const name of names) eu.emit(name); // missed while away
    let refusedOnce = false;
    eu.joinAnswer = (room) => (room === 'c' && !refusedOnce ? ((refusedOnce = true), { code: 'UNAVAILABLE' }) : 'ok');
    const requests = eu.joinRequests.length;
    eu.resume();
    await until(() => names.every((name) => rooms.get(name)!.received.length === 2), 'every room resumed');
    expect(eu.batchJoins).toEqual([names]);
    expect(eu.joinRequests.slice(requests)).toEqual([
      ...names.map((room) => ({ room, since: 1, epoch: 'e1' })),
      { room: 'c', since: 1, epoch: 'e1' }, // the retry of the refused room: a single join
    ]);
    expect(eu.open[0].frames.filter((frame) => frame.event === 'geo.join')).toHaveLength(2);
    for (const name of names) expect(rooms.get(name)!.seqs()).toEqual([1, 2]);
    expect(client!.consistency).toMatchObject({ duplicates: 0, regressions: 0, gaps: 0 });
  });

  it('recovered: false with another epoch (the log was recreated): `gap` with the new epoch, then its events from the start', async () => {
    const eu = await region();
    await connect(eu.regions);
    const gaps: { room: string; epoch: string }[] = [];
    client!.on('gap', (gap) => gaps.push(gap));
    const lobby = await joinCollecting('lobby');
    eu.emit('lobby');
    eu.emit('lobby');
    eu.emit('lobby');
    await until(() => lobby.received.length === 3, 'three events');
    await eu.away(client!);
    eu.logs.reset('lobby', 'e2');
    eu.emit('lobby', { text: 'new log' });
    eu.resume();
    await until(() => lobby.received.length === 4, 'the first event of the new log');
    expect(eu.joinRequests.at(-1)).toEqual({ room: 'lobby', since: 3, epoch: 'e1' });
    expect(gaps).toEqual([{ room: 'lobby', epoch: 'e2' }]);
    expect(lobby.seqs()).toEqual([1, 2, 3, 1]);
    expect(lobby.received[3].data).toEqual({ text: 'new log' });
    // From now on the new epoch's numbering: the next rejoin resumes it.
    await reconnect(eu);
    expect(eu.joinRequests.at(-1)).toEqual({ room: 'lobby', since: 1, epoch: 'e2' });
    expect(gaps).toHaveLength(1);
  });

  it('recovered: false in the same epoch (retention removed events): `gap`, then what is still retained', async () => {
    const eu = await region();
    await connect(eu.regions);
    const gaps: string[] = [];
    client!.on('gap', ({ room }) => gaps.push(room));
    const lobby = await joinCollecting('lobby');
    eu.emit('lobby');
    await until(() => lobby.received.length === 1, 'the first event');
    await eu.away(client!);
    for (let i = 0; i < 4; i++) eu.emit('lobby');
    eu.logs.trim('lobby', 3); // seqs 2 and 3 are gone
    eu.resume();
    await until(() => lobby.received.length === 3, 'the retained events');
    expect(gaps).toEqual(['lobby']);
    expect(lobby.seqs()).toEqual([1, 4, 5]);
  });

  it('events the server sends twice or out of order are not delivered again; ephemeral events always are; regional seqs are their own; non-JSON is ignored', async () => {
    const eu = await region();
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby');
    const frames = [
      envelope('lobby', 1),
      envelope('lobby', 2),
      envelope('lobby', 2), // duplicate
      envelope('lobby', 1), // regression
      envelope('lobby', null, { event_id: 'typing', type: 'chat.typing' }),
      envelope('lobby', 1, { event_id: 'g1', scope: 'regional' }), // another log
      envelope('lobby', 1, { event_id: 'g1-again', scope: 'regional' }),
      envelope('lobby', 4), // not consecutive: fine (NATS seqs may skip)
      envelope('lobby', 3), // behind
      envelope('nowhere', 9), // a room the client is not in
    ];
    for (const frame of frames) eu.sendAll(frame.type, frame);
    eu.sendAll('geo.unknown-control-frame', envelope('lobby', 10)); // the protocol's own names are never events
    for (const connection of eu.open) connection.socket.send('not a frame'); // ignored, not thrown
    const barrier = envelope('lobby', null, { event_id: 'barrier' }); // one socket keeps its order
    eu.sendAll(barrier.type, barrier);
    await until(() => lobby.received.some((event) => event.event_id === 'barrier'), 'the barrier');
    expect(lobby.received.map((event) => `${event.scope ?? 'global'}:${event.seq}:${event.event_id}`)).toEqual([
      'global:1:e1',
      'global:2:e2',
      'global:null:typing',
      'regional:1:g1',
      'global:4:e4',
      'global:null:barrier',
    ]);
  });

  it('the regional log is resumed only in its region: a move starts it afresh', async () => {
    const logs = new FakeLogs();
    const [eu, us] = [await region('eu', logs), await region('us', logs)];
    await connect([eu.region, us.region]);
    const lobby = await joinCollecting('lobby');
    eu.sendAll('geo.joined', { room: 'lobby', scope: 'regional', seq: 6, epoch: 'g', recovered: true });
    eu.sendAll('chat.note', envelope('lobby', 7, { scope: 'regional' }));
    await until(() => lobby.received.length === 1, 'the regional event');
    await reconnect(eu);
    expect(eu.joinRequests.at(-1)).toEqual({ room: 'lobby', since: 0, epoch: 'e1', regional: { since: 7, epoch: 'g' } });
    client!.moveTo('us');
    await until(() => us.joinRequests.length === 1, 'the join in us');
    expect(us.joinRequests[0]).toEqual({ room: 'lobby', since: 0, epoch: 'e1' });
  });

  it('join with a position: since/epoch resume from it (since: 0: the whole retained history)', async () => {
    const eu = await region();
    for (let i = 0; i < 3; i++) eu.emit('lobby');
    for (let i = 0; i < 2; i++) eu.emit('news');
    await connect(eu.regions);
    const lobby = await joinCollecting('lobby', { since: 1, epoch: 'e1' });
    const news = await joinCollecting('news', { since: 0 });
    await until(() => lobby.received.length === 2 && news.received.length === 2, 'the replays');
    expect(eu.joinRequests).toEqual([
      { room: 'lobby', since: 1, epoch: 'e1' },
      { room: 'news', since: 0 },
    ]);
    expect(lobby.seqs()).toEqual([2, 3]);
    expect(news.seqs()).toEqual([1, 2]);
  });

  it("a session's positions from geo.welcome (restored) are used for rooms joined without one", async () => {
    const eu = await region();
    for (let i = 0; i < 4; i++) eu.emit('lobby');
    eu.welcome = () => ({ session_id: 's-9', restored: { lobby: { seq: 2, epoch: 'e1' } } });
    await connect(eu.regions, { sessionId: 's-9' });
    expect(eu.connections[0].url.searchParams.get('session')).toBe('s-9');
    const lobby = await joinCollecting('lobby');
    const fresh = await joinCollecting('fresh');
    await until(() => lobby.received.length === 2, 'the replay from the restored position');
    expect(eu.joinRequests).toEqual([{ room: 'lobby', since: 2, epoch: 'e1' }, { room: 'fresh' }]);
    expect(lobby.seqs()).toEqual([3, 4]);
    expect(fresh.received).toEqual([]);
  });

  it('join refused with a retryable code: joined again after a backoff delay; refused for good: rejected, not retried', async () => {
    const eu = await region();
    await connect(eu.regions);
    let refusals = 2;
    eu.joinAnswer = (room) => (room === 'forbidden' ? { code: 'FORBIDDEN' } : refusals-- > 0 ? { code: 'UNAVAILABLE' } : 'ok');
    const { joined } = await joinCollecting('busy');
    expect(joined.room).toBe('busy');
    await expect(
      within(
        client!.join('forbidden', () => undefined),
        2000,
        'the refused join',
      ),
    ).rejects.toMatchObject({ name: 'GeoClientError', code: 'FORBIDDEN' });
    expect(eu.joins).toEqual(['busy', 'busy', 'busy', 'forbidden']);
    await reconnect(eu);
    expect(eu.joins.slice(4)).toEqual(['busy']); // the refused room is not joined again
  });

  it('leave(): geo.leave sent, a join still waiting rejects with LEFT, and the room is not joined again after a reconnect', async () => {
    const eu = await region();
    await connect(eu.regions);
    const kept = await joinCollecting('kept');
    eu.joinAnswer = (room) => (room === 'slow' ? 'silent' : 'ok');
    const slow = client!.join('slow', () => undefined);
    await until(() => eu.joins.includes('slow'), 'the slow join sent');
    client!.leave('slow');
    client!.leave('never-joined'); // nothing to do
    await expect(within(slow, 1000, 'the left join')).rejects.toMatchObject({ code: 'LEFT' });
    const leaves = () => eu.connections[0].frames.filter((frame) => frame.event === 'geo.leave');
    await until(() => leaves().length === 1, 'geo.leave');
    expect(leaves()).toEqual([{ event: 'geo.leave', data: { room: 'slow' } }]);
    await reconnect(eu);
    expect(eu.joinRequests.slice(2).map((request) => request.room)).toEqual(['kept']);
    eu.emit('kept');
    await until(() => kept.received.length === 1, 'an event of the kept room');
  });

  it('geo.left with a code (the server ended a membership, e.g. a refreshed token no longer allows the room): the room is gone, its waiting join and publishes rejected with that code, `left` emitted, not joined again', async () => {
    const eu = await region();
    await connect(eu.regions);
    const left: GeoClientEvents['left'][] = [];
    client!.on('left', (event) => left.push(event));
    const lobby = await joinCollecting('lobby');
    const secret = await joinCollecting('secret');
    eu.joinAnswer = (room) => (room === 'pending' ? 'silent' : 'ok');
    const pendingJoin = client!.join('pending', () => undefined);
    eu.answer = () => 'silent';
    const waiting = client!.publish('secret', 'chat.message', { text: 'unacked' });
    await until(() => eu.received.length === 1 && eu.joins.includes('pending'), 'the publish and the join sent');
    const message = 'geo.auth: the new token may not use room "secret"; it was left';
    eu.forget('secret');
    eu.sendAll('geo.left', { room: 'secret', code: 'FORBIDDEN', message });
    eu.sendAll('geo.left', { room: 'pending', code: 'FORBIDDEN', message: 'not allowed' });
    await expect(within(waiting, 1000, 'the waiting publish')).rejects.toMatchObject({
      name: 'GeoClientError',
      code: 'FORBIDDEN',
      message,
    });
    await expect(within(pendingJoin, 1000, 'the waiting join')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(left).toEqual([
      { room: 'secret', code: 'FORBIDDEN', message },
      { room: 'pending', code: 'FORBIDDEN', message: 'not allowed' },
    ]);
    await expect(client!.publish('secret', 'chat.message', {})).rejects.toMatchObject({ code: 'NOT_JOINED' });
    eu.answer = () => 'store';
    await reconnect(eu);
    expect(eu.joinRequests.slice(-1).map((request) => request.room)).toEqual(['lobby']); // neither secret nor pending again
    eu.emit('lobby');
    eu.emit('secret');
    await until(() => lobby.received.length === 1, 'an event of the lobby');
    expect(secret.received).toEqual([]);
    // The answer to the client's own leave() has no code: nothing is emitted for it.
    client!.leave('lobby');
    await until(() => eu.connections.at(-1)!.frames.some((frame) => frame.event === 'geo.leave'), 'geo.leave');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(left).toHaveLength(2);
    expect(client!.state).toBe('open');
  });

  it('a handler that throws does not stop the other handlers or later events: the client reports CALLBACK_FAILED and goes on', async () => {
    const eu = await region();
    await connect(eu.regions);
    const errors: { code: string; message: string }[] = [];
    client!.on('error', (error) => errors.push(error));
    const after: (number | null)[] = [];
    await client!.join('r', (event) => {
      if (event.seq === 1) throw new Error('application bug');
    });
    const { seqs } = await joinCollecting('r');
    eu.emit('r');
    eu.emit('r');
    await until(() => seqs().length === 2, 'both events to the second handler');
    after.push(...seqs());
    expect(after).toEqual([1, 2]);
    expect(errors).toEqual([{ code: 'CALLBACK_FAILED', message: 'a handler of room "r" threw: application bug' }]);
    expect(client!.state).toBe('open');
  });
});
