import { afterEach, describe, expect, it } from '@jest/globals';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { waitFor } from '../testing/wait-for.js';
import { globalLog } from '../transport/log-ref.js';
import { GeoMemoryNetwork } from '../transport/memory/memory-network.js';
import { MemoryTransport } from '../transport/memory/memory.transport.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { ReplayBudget, type ReplayLimits } from './replay-budget.js';
import { RoomFeeds } from './room-feeds.js';
import type { JoinOutcome } from '../protocol/frames.js';
import type { FeedMember } from './room-feed.js';

const context = { regions: ['eu', 'us'], dedupWindowMs: 120_000, retention: { maxEvents: 1000, maxAgeMs: 3_600_000 } };

class Member implements FeedMember {
  readonly codec = 'json';
  readonly events: GeoLoggedEnvelope[] = [];
  backlogBytes = 0;
  readonly replayAllowance = new TokenBucket({ perSecond: 1_000_000, burst: 1_000_000 });
  deliver(event: GeoLoggedEnvelope) {
    this.events.push(event);
  }
  deliverEphemeral() {}
  evicted() {}
}

describe('RoomFeeds', () => {
  const transports: MemoryTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
  });

  const unlimited: ReplayLimits = {
    batchSize: 7,
    perInstance: { perSecond: 1_000_000, burst: 1_000_000 },
    concurrent: 64,
    highWaterBytes: 1 << 20,
    // Off: these cases are about reads of the log; resumes from memory have their own below.
    recentEvents: 0,
    recentMs: 10_000,
  };

  async function setup(delayMs = 0, retention = context.retention, limits: Partial<ReplayLimits> = {}) {
    const network = new GeoMemoryNetwork({ delayMs });
    const writer = new MemoryTransport(network, { ...context, retention, region: 'eu' });
    const reader = new MemoryTransport(network, { ...context, retention, region: 'us' });
    transports.push(writer, reader);
    await writer.connect();
    await reader.connect();
    return { writer, reader, feeds: new RoomFeeds(reader, new ReplayBudget({ ...unlimited, ...limits })) };
  }
  const log = globalLog('room');
  let n = 0;
  const append = (transport: MemoryTransport) =>
    transport.append(log, {
      event_id: `e${++n}`,
      room_id: 'room',
      type: 't',
      sender: 's',
      timestamp: new Date().toISOString(),
      region: 'eu',
      data: n,
    });

  it('replays (since, live] in pages while holding live events, then delivers live ones: no gap, no duplicate', async () => {
    const { writer, feeds } = await setup(5);
    for (let i = 0; i < 30; i++) await append(writer);
    const first = new Member();
    let epoch = '';
    await feeds.join(log, first, {}, (outcome) => (epoch = outcome.epoch));
    const outcomes: JoinOutcome[] = [];
    const late = new Member();
    const writing = (async () => {
      for (let i = 0; i < 30; i++) await append(writer);
    })();
    await feeds.join(log, late, { since: 3, epoch }, (outcome) => outcomes.push(outcome));
    await writing;
    await waitFor(() => late.events.length === 57, '57 events');
    expect(late.events.map((event) => event.seq)).toEqual(Array.from({ length: 57 }, (_, i) => i + 4));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0].recovered).toBe(true);
    expect(feeds.count).toBe(1);
  });

  it('a client ahead of this node (it came from a region further along) gets nothing twice', async () => {
    const { writer, feeds } = await setup(20);
    for (let i = 0; i < 5; i++) await append(writer);
    const member = new Member();
    await feeds.join(log, member, { since: 8 }, () => undefined);
    for (let i = 0; i < 5; i++) await append(writer);
    await waitFor(() => member.events.length === 2, 'events 9 and 10');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(member.events.map((event) => event.seq)).toEqual([9, 10]);
  });

  it('past retention: recovered false, then the retained events and live ones', async () => {
    const { writer, feeds } = await setup(0, { maxEvents: 5, maxAgeMs: 3_600_000 });
    for (let i = 0; i < 12; i++) await append(writer);
    const member = new Member();
    const outcomes: JoinOutcome[] = [];
    await feeds.join(log, member, { since: 2 }, (outcome) => outcomes.push(outcome));
    await append(writer);
    await waitFor(() => member.events.length === 6, 'retained and live events');
    expect(outcomes[0]).toMatchObject({ recovered: false, seq: 12 });
    expect(member.events.map((event) => event.seq)).toEqual([8, 9, 10, 11, 12, 13]);
  });

  it("positionOf: a live member's last delivered seq; nothing while it replays, before the feed opens, or after it left", async () => {
    const { writer, feeds } = await setup(0, context.retention, { batchSize: 10, highWaterBytes: 100 });
    for (let i = 0; i < 30; i++) await append(writer);
    const member = new Member();
    expect(feeds.positionOf(log, member)).toBeUndefined();
    await feeds.join(log, member, {}, () => undefined);
    expect(feeds.positionOf(log, member)).toBe(30); // live from the head: it is at 30
    await append(writer);
    await waitFor(() => member.events.length === 1, 'a live event');
    expect(feeds.positionOf(log, member)).toBe(31);
    // A replay that stalls on a full socket: the member is not live, its position not known here.
    const replaying = new Member();
    replaying.deliver = function (event) {
      this.events.push(event);
      this.backlogBytes += 1000;
    };
    void feeds.join(log, replaying, { since: 0 }, () => undefined);
    await waitFor(() => replaying.events.length === 1, 'the first replayed event');
    expect(feeds.positionOf(log, replaying)).toBeUndefined();
    feeds.leave(log, replaying);
    feeds.leave(log, member);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(feeds.positionOf(log, member)).toBeUndefined();
  });

  it('closes the tail when the last member leaves', async () => {
    const { feeds } = await setup();
    const a = new Member();
    const b = new Member();
    await feeds.join(log, a, {}, () => undefined);
    await feeds.join(log, b, {}, () => undefined);
    feeds.leave(log, a);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(feeds.count).toBe(1);
    feeds.leave(log, b);
    await waitFor(() => feeds.count === 0, 'the feed to close');
  });

  it('joining again cancels what the earlier join still had to replay: nothing at or below the new geo.joined seq follows it', async () => {
    const { writer, feeds } = await setup(2, context.retention, { batchSize: 5 });
    for (let i = 0; i < 200; i++) await append(writer);
    const member = new Member();
    const joined: number[] = [];
    const first = feeds.join(log, member, { since: 0 }, () => joined.push(member.events.length));
    await waitFor(() => member.events.length >= 5, 'the replay to start');
    feeds.leave(log, member); // what the server does on a re-join
    await feeds.join(log, member, {}, (outcome) => {
      expect(outcome.seq).toBe(200);
      joined.push(member.events.length);
    });
    await first;
    const atSecondJoin = joined[1];
    await append(writer);
    await waitFor(() => member.events.at(-1)?.seq === 201, 'the live event');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(member.events.slice(atSecondJoin).map((event) => event.seq)).toEqual([201]);
  });

  it("paces a replay by the connection's allowance", async () => {
    const { writer, feeds } = await setup(0, context.retention, { batchSize: 50 });
    for (let i = 0; i < 300; i++) await append(writer);
    const member = new Member();
    (member as { replayAllowance: TokenBucket }).replayAllowance = new TokenBucket({ perSecond: 1000, burst: 100 });
    const started = Date.now();
    await feeds.join(log, member, { since: 0 }, () => undefined);
    await waitFor(() => member.events.length === 300, '300 events');
    // 100 at once, the other 200 at 1000/s: at least ~150 ms (pages of 50 are paid afterwards).
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("stops reading history while the member's socket is full, and goes on once it drains", async () => {
    const { writer, feeds } = await setup(0, context.retention, { batchSize: 10, highWaterBytes: 100 });
    for (let i = 0; i < 50; i++) await append(writer);
    const member = new Member();
    member.deliver = function (event) {
      this.events.push(event);
      this.backlogBytes += 60; // two events fill the socket past the high-water mark
    };
    const joining = feeds.join(log, member, { since: 0 }, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(member.events).toHaveLength(2);
    member.backlogBytes = 0;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(member.events).toHaveLength(4);
    member.deliver = function (event) {
      this.events.push(event);
    };
    member.backlogBytes = 0;
    await joining;
    await waitFor(() => member.events.length === 50, 'the rest after draining');
    expect(member.events.map((event) => event.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('live events that overflow what is held during a long replay are read from the log instead: no gap, no duplicate', async () => {
    const { writer, feeds } = await setup(0, { maxEvents: 10_000, maxAgeMs: 3_600_000 }, { batchSize: 100 });
    for (let i = 0; i < 100; i++) await append(writer);
    const member = new Member();
    (member as { replayAllowance: TokenBucket }).replayAllowance = new TokenBucket({ perSecond: 2000, burst: 1 });
    const joining = feeds.join(log, member, { since: 0 }, () => undefined);
    for (let i = 0; i < 1500; i++) await append(writer); // more than the 1000 held per member
    await joining;
    await waitFor(() => member.events.length === 1600, '1600 events', 10_000);
    expect(member.events.map((event) => event.seq)).toEqual(Array.from({ length: 1600 }, (_, i) => i + 1));
  });

  it('runs at most `concurrent` history reads at once; a replay waiting for its client to drain holds no slot', async () => {
    const { writer, reader, feeds } = await setup(0, context.retention, { concurrent: 1, batchSize: 10, highWaterBytes: 100 });
    for (let i = 0; i < 40; i++) await append(writer);
    let inFlight = 0;
    let most = 0;
    const read = reader.read.bind(reader);
    reader.read = async (...args) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      try {
        return await read(...args);
      } finally {
        inFlight--;
      }
    };
    const stalled = new Member();
    stalled.deliver = function (event) {
      this.events.push(event);
      this.backlogBytes += 1000; // full after one event, and never drains
    };
    void feeds.join(log, stalled, { since: 0 }, () => undefined);
    await waitFor(() => stalled.events.length === 1, 'the stalled member to get its first event');
    const readers = [new Member(), new Member(), new Member()];
    await Promise.all(readers.map((member) => feeds.join(log, member, { since: 0 }, () => undefined)));
    for (const member of readers) expect(member.events).toHaveLength(40);
    expect(stalled.events).toHaveLength(1);
    expect(most).toBe(1);
    feeds.leave(log, stalled);
  });

  it('a tail that fails while the feed opens refuses the join with UNAVAILABLE (join again), never a silent dead feed', async () => {
    const { reader, feeds } = await setup();
    const tail = reader.tail.bind(reader);
    reader.tail = async (log, after, onEvent, onError) => {
      const subscription = await tail(log, after, onEvent, onError);
      onError?.(new Error('stream recreated'));
      return subscription;
    };
    const member = new Member();
    await expect(feeds.join(log, member, {}, () => undefined)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(feeds.count).toBe(0);
  });

  it('an event a tail hands over twice (or out of order) reaches no member twice', async () => {
    const { writer, reader, feeds } = await setup();
    const tail = reader.tail.bind(reader);
    reader.tail = (log, after, onEvent, onError) =>
      tail(
        log,
        after,
        (event) => {
          onEvent(event);
          onEvent(event);
          if (event.seq > 1) onEvent({ ...event, seq: event.seq - 1 });
        },
        onError,
      );
    const members = [new Member(), new Member()];
    for (const member of members) await feeds.join(log, member, {}, () => undefined);
    for (let i = 0; i < 3; i++) await append(writer);
    await waitFor(() => members.every((member) => member.events.length >= 3), 'three events');
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const member of members) expect(member.events.map((event) => event.seq)).toEqual([1, 2, 3]);
  });

  it('memory: a live membership is a number in its feed, a feed with one member has no Map, and an open feed keeps no promise', async () => {
    const { writer, feeds } = await setup();
    type Inside = { solo?: FeedMember; soloPosition: unknown; many?: Map<FeedMember, unknown>; opening?: Promise<void> };
    const feedsOf = () => [...(feeds as unknown as { global: Map<string, Inside> }).global.values()];
    // One client alone in each of 50 rooms, as in a many-rooms-per-connection abuse.
    const alone = new Member();
    for (let i = 0; i < 50; i++) await feeds.join(globalLog(`alone-${i}`), alone, {}, () => undefined);
    expect(feeds.count).toBe(50);
    for (const feed of feedsOf()) {
      expect(feed).toMatchObject({ solo: alone, soloPosition: 0, many: undefined, opening: undefined });
    }
    // 20 members of one room, one of them after a replay: every live position is a plain number.
    for (let i = 0; i < 5; i++) await append(writer);
    const members = Array.from({ length: 20 }, () => new Member());
    for (const [i, member] of members.entries()) await feeds.join(log, member, i === 0 ? { since: 2 } : {}, () => undefined);
    await waitFor(() => members[0].events.length === 3, 'the replay');
    const room = feedsOf().find((feed) => feed.many)!;
    expect(room.solo).toBeUndefined();
    expect([...room.many!.values()]).toEqual(Array.from({ length: 20 }, () => 5));
    await append(writer);
    await waitFor(() => members.every((member) => member.events.at(-1)?.seq === 6), 'the live event');
    expect([...room.many!.values()]).toEqual(Array.from({ length: 20 }, () => 5)); // nothing written per delivery
    expect(members.map((member) => feeds.positionOf(log, member))).toEqual(Array.from({ length: 20 }, () => 6));
  });

  it('a position without its epoch is not vouched for: after the log was deleted and started again, the resume says recovered: false', async () => {
    const { writer, reader, feeds } = await setup();
    for (let i = 0; i < 10; i++) await append(writer);
    const head = await reader.head(log);
    await writer.deleteLog(log);
    for (let i = 0; i < 3; i++) await append(writer); // seqs 1-3 of the new incarnation
    const outcomes: JoinOutcome[] = [];
    const join = async (position: { since?: number; epoch?: string }) => {
      const member = new Member();
      await feeds.join(log, member, position, (outcome) => outcomes.push(outcome));
      return member;
    };
    // Seq 10 of the deleted log, no epoch: its events after 10 are gone, and the three new ones are not after it.
    const blind = await join({ since: 10 });
    expect(outcomes.at(-1)).toMatchObject({ recovered: false });
    // The same position with its epoch: told it is another log, replayed from its start.
    const told = await join({ since: 10, epoch: head.epoch });
    expect(outcomes.at(-1)).toMatchObject({ recovered: false });
    await waitFor(() => told.events.length === 3, 'the new log');
    // Without an epoch, `since` is still where the replay starts: events after it, nothing twice.
    const fromTwo = await join({ since: 2 });
    expect(outcomes.at(-1)).toMatchObject({ recovered: false, seq: 3 });
    await waitFor(() => fromTwo.events.length === 1, 'the event after 2');
    // `since: 0` asks for the whole log, whatever its epoch: nothing after 0 can be missing.
    const whole = await join({ since: 0 });
    expect(outcomes.at(-1)).toMatchObject({ recovered: true });
    await waitFor(() => whole.events.length === 3, 'the whole log');
    expect(blind.events).toEqual([]);
    expect(fromTwo.events.map((event) => event.seq)).toEqual([3]);
  });
  describe('resumes from memory (recentEvents)', () => {
    /** Counts the reader's history reads. */
    const countReads = (reader: MemoryTransport) => {
      const reads: number[] = [];
      const read = reader.read.bind(reader);
      reader.read = (target, afterSeq, limit) => {
        reads.push(afterSeq);
        return read(target, afterSeq, limit);
      };
      return reads;
    };

    it('a member resuming after a recent event is replayed from what the feed holds: no read, recovered, nothing missed or twice', async () => {
      const { writer, reader, feeds } = await setup(0, context.retention, { recentEvents: 50 });
      for (let i = 0; i < 5; i++) await append(writer);
      const live = new Member();
      let epoch = '';
      await feeds.join(log, live, {}, (outcome) => (epoch = outcome.epoch));
      for (let i = 0; i < 20; i++) await append(writer); // seqs 6-25, held
      await waitFor(() => live.events.length === 20, 'the live events');
      const reads = countReads(reader);
      const outcomes: JoinOutcome[] = [];
      const resumed = new Member();
      await feeds.join(log, resumed, { since: 12, epoch }, (outcome) => outcomes.push(outcome));
      expect(outcomes).toEqual([{ seq: 25, epoch, recovered: true }]);
      expect(resumed.events.map((event) => event.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 13));
      await append(writer);
      await waitFor(() => resumed.events.length === 14, 'the next live event');
      expect(resumed.events.at(-1)!.seq).toBe(26);
      expect(reads).toEqual([]);
    });

    it('a position before what is held (more events since, or swept) is read from the log, exactly', async () => {
      const { writer, reader, feeds } = await setup(0, context.retention, { recentEvents: 10, recentMs: 30 });
      const live = new Member();
      let epoch = '';
      await feeds.join(log, live, {}, (outcome) => (epoch = outcome.epoch));
      for (let i = 0; i < 25; i++) await append(writer); // 1-25; only 16-25 held
      await waitFor(() => live.events.length === 25, 'the live events');
      const reads = countReads(reader);
      const early = new Member();
      await feeds.join(log, early, { since: 14, epoch }, () => undefined);
      await waitFor(() => early.events.length === 11, 'the events after 14');
      expect(early.events.map((event) => event.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 15));
      expect(reads).toEqual([14]);
      const held = new Member();
      await feeds.join(log, held, { since: 15, epoch }, () => undefined); // the oldest held event's position: memory
      expect(held.events).toHaveLength(10);
      expect(reads).toEqual([14]);
      // Two sweeps (30 ms apart) later, nothing is held any more: the log is read.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const late = new Member();
      await feeds.join(log, late, { since: 20, epoch }, () => undefined);
      await waitFor(() => late.events.length === 5, 'the events after 20');
      expect(reads).toEqual([14, 20]);
    });

    it('a position of another epoch, or without one, is never answered from memory', async () => {
      const { writer, reader, feeds } = await setup(0, context.retention, { recentEvents: 50 });
      const live = new Member();
      await feeds.join(log, live, {}, () => undefined);
      for (let i = 0; i < 10; i++) await append(writer);
      await waitFor(() => live.events.length === 10, 'the live events');
      const reads = countReads(reader);
      const outcomes: JoinOutcome[] = [];
      await feeds.join(log, new Member(), { since: 5 }, (outcome) => outcomes.push(outcome));
      await feeds.join(log, new Member(), { since: 5, epoch: 'another' }, (outcome) => outcomes.push(outcome));
      expect(outcomes.map((outcome) => outcome.recovered)).toEqual([false, false]);
      // The replay from 0 reads its first page (7 events), then finds the rest held.
      expect(reads).toEqual([5, 0]);
    });
  });

  it('replays from one position share their reads: one read per page, however many members resume', async () => {
    const { writer, reader, feeds } = await setup(5, context.retention, { batchSize: 10 });
    for (let i = 0; i < 25; i++) await append(writer);
    let reads = 0;
    const read = reader.read.bind(reader);
    reader.read = (...args) => {
      reads++;
      return read(...args);
    };
    const members = Array.from({ length: 20 }, () => new Member());
    await Promise.all(members.map((member) => feeds.join(log, member, { since: 0 }, () => undefined)));
    await waitFor(() => members.every((member) => member.events.length === 25), 'every replay');
    for (const member of members) expect(member.events.map((event) => event.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(reads).toBe(3); // after 0, 10, 20
  });
});
