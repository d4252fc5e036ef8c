import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { FeedMember } from '../fanout/room-feed.js';
import { TokenBucket } from '../limits/token-bucket.js';
import type { GeoSessionState } from '../transport/geo-state-store.interface.js';
import { MemoryStateStore } from '../transport/memory/memory-state.store.js';
import { SAVE_DEBOUNCE_MS, SAVE_MAX_DELAY_MS, SessionKeeper } from './session-keeper.js';

const member = (): FeedMember => ({
  codec: 'json',
  backlogBytes: 0,
  replayAllowance: new TokenBucket({ perSecond: 1, burst: 1 }),
  deliver: () => undefined,
  deliverEphemeral: () => undefined,
  evicted: () => undefined,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A real memory store whose writes are counted (and can be made to fail or hang). */
class CountingStore extends MemoryStateStore {
  readonly writes: { id: string; state: GeoSessionState }[] = [];
  failWrites = 0;
  failReads = false;
  readDelayMs = 0;
  override async putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    this.writes.push({ id: sessionId, state: structuredClone(session) });
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new Error('store unavailable');
    }
    return super.putSession(sessionId, session, ttlMs);
  }
  override async getSession(sessionId: string): Promise<GeoSessionState | null> {
    if (this.readDelayMs) await sleep(this.readDelayMs);
    if (this.failReads) throw new Error('store unavailable');
    return super.getSession(sessionId);
  }
}

describe('SessionKeeper', () => {
  const keepers: SessionKeeper[] = [];
  afterEach(async () => {
    await Promise.all(keepers.splice(0).map((keeper) => keeper.close()));
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /** `cursors` plays the feeds: where each member is in each room now. */
  function setup(loadTimeoutMs = 1000) {
    const store = new CountingStore();
    const cursors = new Map<FeedMember, Map<string, number>>();
    const keeper = new SessionKeeper(store, { ttlMs: 60_000, loadTimeoutMs }, (who, room) => cursors.get(who)?.get(room));
    keepers.push(keeper);
    const at = (who: FeedMember, room: string, seq: number | undefined) => {
      const rooms = cursors.get(who) ?? new Map<string, number>();
      if (seq === undefined) rooms.delete(room);
      else rooms.set(room, seq);
      cursors.set(who, rooms);
    };
    return { store, keeper, at };
  }

  it('writes nothing while positions move; a burst of joins is one write; a close writes the positions the feeds hold', async () => {
    const { store, keeper, at } = setup();
    const connection = member();
    const { session } = await keeper.start(undefined, 'alice', connection);
    for (const room of ['a', 'b', 'c']) {
      session.joined(room, 10, 'e1');
      at(connection, room, 10);
      await sleep(5); // joins arrive a few ms apart, as a resume's do
    }
    expect(store.writes).toHaveLength(0); // still within the burst
    await sleep(SAVE_DEBOUNCE_MS * 2);
    expect(store.writes).toHaveLength(1);
    expect(store.writes[0].state.rooms).toEqual({ a: { seq: 10, epoch: 'e1' }, b: { seq: 10, epoch: 'e1' }, c: { seq: 10, epoch: 'e1' } });

    // Events flow: the feeds' cursors move, nothing is written.
    for (let seq = 11; seq <= 500; seq++) at(connection, 'a', seq);
    at(connection, 'b', 42);
    await sleep(SAVE_DEBOUNCE_MS * 3);
    expect(store.writes).toHaveLength(1);

    await keeper.end(session);
    expect(store.writes).toHaveLength(2);
    expect(store.writes[1].state.rooms).toEqual({ a: { seq: 500, epoch: 'e1' }, b: { seq: 42, epoch: 'e1' }, c: { seq: 10, epoch: 'e1' } });
    expect(await store.getSession(session.id)).toMatchObject({ sender: 'alice', rooms: store.writes[1].state.rooms });
    await keeper.end(session); // a second close (drain, then the socket's close event) writes nothing more
    expect(store.writes).toHaveLength(2);
  });

  it('a leave saves the remaining rooms with their current positions; a room whose member is not live keeps its saved position', async () => {
    const { store, keeper, at } = setup();
    const connection = member();
    const { session } = await keeper.start(undefined, 'bob', connection);
    session.joined('a', 0, 'e1');
    session.joined('b', 5, 'e2');
    at(connection, 'a', 0);
    await sleep(SAVE_DEBOUNCE_MS * 2);
    at(connection, 'a', 7);
    at(connection, 'b', undefined); // e.g. b is replaying again after a rejoin: not live
    session.left('a');
    await sleep(SAVE_DEBOUNCE_MS * 2);
    expect(store.writes.map((write) => write.state.rooms)).toEqual([
      { a: { seq: 0, epoch: 'e1' }, b: { seq: 5, epoch: 'e2' } },
      { b: { seq: 5, epoch: 'e2' } },
    ]);
    session.left('nothing'); // not a member: no change, no write
    await sleep(SAVE_DEBOUNCE_MS * 2);
    expect(store.writes).toHaveLength(2);
  });

  it('a session that keeps changing is still saved within the longest delay', async () => {
    const { store, keeper } = setup();
    const { session } = await keeper.start(undefined, 'carol', member());
    const started = Date.now();
    let n = 0;
    while (store.writes.length === 0 && Date.now() - started < SAVE_MAX_DELAY_MS * 3) {
      session.joined(`room-${n++}`, 0, 'e');
      await sleep(SAVE_DEBOUNCE_MS / 2);
    }
    expect(store.writes).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(SAVE_MAX_DELAY_MS + 2 * SAVE_DEBOUNCE_MS);
    expect(Object.keys(store.writes[0].state.rooms).length).toBeGreaterThan(5);
  });

  it('a connection that never joined or left anything writes nothing, even at close; a restored one keeps its stored rooms', async () => {
    const { store, keeper, at } = setup();
    const idle = await keeper.start(undefined, 'dan', member());
    await keeper.end(idle.session);
    expect(store.writes).toHaveLength(0);

    await store.putSession('s-1', { sender: 'dan', rooms: { a: { seq: 3, epoch: 'e' }, b: { seq: 9, epoch: 'e' } }, updatedAt: 0 }, 60_000);
    store.writes.length = 0;
    const connection = member();
    const resumed = await keeper.start('s-1', 'dan', connection);
    expect(resumed.session.id).toBe('s-1');
    expect(resumed.restored).toEqual({ a: { seq: 3, epoch: 'e' }, b: { seq: 9, epoch: 'e' } });
    resumed.session.joined('a', 3, 'e');
    at(connection, 'a', 12);
    await keeper.end(resumed.session);
    // a moved on; b, not joined on this connection, is kept as it was.
    expect(store.writes.map((write) => write.state.rooms)).toEqual([{ a: { seq: 12, epoch: 'e' }, b: { seq: 9, epoch: 'e' } }]);
  });

  it("positions never cross identities: another sender's session id gives a new session", async () => {
    const { store, keeper } = setup();
    await store.putSession('s-2', { sender: 'erin', rooms: { a: { seq: 3, epoch: 'e' } }, updatedAt: 0 }, 60_000);
    const started = await keeper.start('s-2', 'mallory', member());
    expect(started.session.id).not.toBe('s-2');
    expect(started.restored).toBeUndefined();
  });

  it('a session read slower than loadTimeoutMs gives a new session at once, not a late welcome', async () => {
    const { store, keeper } = setup(50);
    await store.putSession('s-3', { sender: 'fay', rooms: { a: { seq: 3, epoch: 'e' } }, updatedAt: 0 }, 60_000);
    store.readDelayMs = 1000;
    const began = Date.now();
    const started = await keeper.start('s-3', 'fay', member());
    expect(Date.now() - began).toBeLessThan(500);
    expect(started.session.id).not.toBe('s-3');
    expect(started.restored).toBeUndefined();
    store.readDelayMs = 0;
    expect((await keeper.start('s-3', 'fay', member())).restored).toEqual({ a: { seq: 3, epoch: 'e' } });
  });

  it('a failed save is tried again later', async () => {
    const { store, keeper } = setup();
    const { session } = await keeper.start(undefined, 'gil', member());
    store.failWrites = 1;
    session.joined('a', 1, 'e');
    await sleep(SAVE_DEBOUNCE_MS * 2);
    expect(store.writes).toHaveLength(1);
    expect(await store.getSession(session.id)).toBeNull();
    await sleep(2100);
    expect(store.writes).toHaveLength(2);
    expect(await store.getSession(session.id)).toMatchObject({ rooms: { a: { seq: 1, epoch: 'e' } } });
  });

  it('a close pre-empts a pending retry and saves everything once', async () => {
    const { store, keeper } = setup();
    const { session } = await keeper.start(undefined, 'gus', member());
    store.failWrites = 1;
    session.joined('a', 1, 'e');
    await sleep(SAVE_DEBOUNCE_MS * 2);
    expect(store.writes).toHaveLength(1);
    expect(await store.getSession(session.id)).toBeNull();
    // The retry (2 s later) is pre-empted by the close, which saves everything.
    session.joined('b', 2, 'e');
    await keeper.end(session);
    expect(await store.getSession(session.id)).toMatchObject({ rooms: { a: { seq: 1, epoch: 'e' }, b: { seq: 2, epoch: 'e' } } });
    const writes = store.writes.length;
    await sleep(50);
    expect(store.writes).toHaveLength(writes);
  });

  it('shutdown writes the saves still scheduled and waits for them', async () => {
    const { store, keeper } = setup();
    const { session } = await keeper.start(undefined, 'hal', member());
    session.joined('a', 4, 'e');
    await keeper.close();
    expect(await store.getSession(session.id)).toMatchObject({ rooms: { a: { seq: 4, epoch: 'e' } } });
  });

  it('a store that went away: thousands of failed saves and loads write ten lines each, then one count a minute', async () => {
    jest.useFakeTimers({ now: 0 });
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { store, keeper } = setup();
    const sessions = await Promise.all(Array.from({ length: 2000 }, (_, i) => keeper.start(undefined, `user-${i}`, member())));
    store.failWrites = Infinity;
    for (const { session } of sessions) session.joined('lobby', 0, 'e');
    await jest.advanceTimersByTimeAsync(SAVE_DEBOUNCE_MS);
    expect(store.writes).toHaveLength(2000);
    // Each save is tried three more times (2, 4 and 6 s later): 8,000 failures, ten lines.
    await jest.advanceTimersByTimeAsync(2000 + 4000 + 6000);
    expect(store.writes).toHaveLength(8000);
    expect(warn).toHaveBeenCalledTimes(10);
    expect(warn.mock.calls[0][0]).toBe(`session ${sessions[0].session.id} not saved: store unavailable; trying again`);
    // Reconnecting clients whose sessions cannot be read: ten lines more.
    store.failReads = true;
    const resumed = await Promise.all(Array.from({ length: 1000 }, (_, i) => keeper.start(`s-${i}`, `user-${i}`, member())));
    expect(resumed.every(({ restored }) => restored === undefined)).toBe(true);
    expect(warn).toHaveBeenCalledTimes(20);
    expect(warn.mock.calls[10][0]).toBe('session s-0 not loaded: store unavailable');
    // A minute after the first failure of each kind, one line with the count.
    expect(Date.now()).toBe(SAVE_DEBOUNCE_MS + 12_000);
    await jest.advanceTimersByTimeAsync(60_000 - 12_000);
    expect(warn.mock.calls.slice(20).map((call) => call[0])).toEqual([
      '7990 more session save(s) failed in the last minute, 2000 of them not tried again ' +
        '(those sessions stay stored as of their last save); last error: store unavailable',
    ]);
    await jest.advanceTimersByTimeAsync(12_000);
    expect(warn.mock.calls.slice(21).map((call) => call[0])).toEqual([
      '990 more session(s) not loaded in the last minute (those connections got new sessions); last error: store unavailable',
    ]);
    await jest.advanceTimersByTimeAsync(120_000);
    expect(warn).toHaveBeenCalledTimes(22);
  });
});
