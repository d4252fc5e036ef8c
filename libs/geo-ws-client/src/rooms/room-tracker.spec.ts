import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { ClientConnection } from '../client-connection.js';
import { GeoClientError } from '../errors.js';
import { ClientEvents, type GeoClientEvents } from '../geo-client-events.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { GeoEnvelope, JoinedFrame } from '../protocol.js';
import { ConsistencyCounter } from './consistency.js';
import { RoomTracker } from './room-tracker.js';

/**
 * The room tracker alone, against a recording connection on jest's fake clock: what it
 * joins and from where, what it delivers, what it retries, and what `close()` leaves.
 */
describe('RoomTracker', () => {
  let frames: { event: string; data: any }[];
  let open: boolean;
  let region: string;
  let sentPublishes: string[];
  let dropped: [string, string][];
  let events: ClientEvents;
  let counter: ConsistencyCounter;
  let rooms: RoomTracker;

  const connection: ClientConnection = {
    get isOpen() {
      return open;
    },
    get region() {
      return region;
    },
    send: (event, data) => {
      frames.push({ event, data });
      return true;
    },
    sendEncoded: () => undefined,
  };

  const create = (options: Partial<GeoClientOptions> = {}): RoomTracker =>
    (rooms = new RoomTracker(
      { regions: [], backoff: { baseMs: 100, maxMs: 100 }, ...options },
      connection,
      events,
      counter,
      { send: (room) => sentPublishes.push(room), drop: (room, error) => dropped.push([room, error.code]) },
      () => ({ sessionId: 's', sender: 'me' }),
    ));

  const joins = () => frames.filter((frame) => frame.event === 'geo.join').map((frame) => frame.data);
  const joined = (room: string, seq: number, extra: Partial<JoinedFrame> = {}): void =>
    rooms.joined({ room, seq, epoch: 'e1', recovered: true, ...extra });
  const event = (room: string, seq: number | null, id = `e${seq}`): GeoEnvelope => ({
    event_id: id,
    room_id: room,
    type: 'chat.message',
    sender: 'someone',
    timestamp: '',
    region: 'eu',
    seq,
    data: {},
  });

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // join retries after 50 ms
    frames = [];
    open = true;
    region = 'eu';
    sentPublishes = [];
    dropped = [];
    events = new ClientEvents();
    counter = new ConsistencyCounter();
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('joins at once when open, else at the next rejoinAll(); geo.joined resolves the join and sends its publishes', async () => {
    create();
    open = false;
    const joining = rooms.join('r', () => undefined, {});
    expect(joins()).toEqual([]);
    open = true;
    rooms.rejoinAll();
    expect(joins()).toEqual([{ room: 'r' }]);
    expect(rooms.isJoined('r')).toBe(false);
    joined('r', 4);
    await expect(joining).resolves.toEqual({ room: 'r', seq: 4, epoch: 'e1', recovered: true });
    expect([rooms.isJoined('r'), sentPublishes]).toEqual([true, ['r']]);
  });

  it('delivers each event once, in order, flagged replayed up to the geo.joined seq; after a lost connection it rejoins from the last one', () => {
    create();
    const seen: string[] = [];
    void rooms.join('r', (envelope, delivery) => seen.push(`${envelope.seq}${delivery.replayed ? ' replayed' : ''}`), { since: 0 });
    joined('r', 2);
    for (const seq of [1, 2, 2, 3]) rooms.event(event('r', seq));
    rooms.event(event('r', null, 'typing'));
    expect(seen).toEqual(['1 replayed', '2 replayed', '3', 'null']);
    expect(counter.snapshot).toEqual({ events: 3, duplicates: 1, regressions: 0, gaps: 0 });
    rooms.connectionLost();
    expect(rooms.isJoined('r')).toBe(false);
    rooms.rejoinAll();
    expect(joins().at(-1)).toEqual({ room: 'r', since: 3, epoch: 'e1' });
  });

  it('the regional log is resumed only in its region; restored positions are used for rooms joined without one', () => {
    create();
    void rooms.join('r', () => undefined, {});
    rooms.restore({ connection_id: 'c', region: 'eu', sender: 'me', restored: { r: { seq: 5, epoch: 'e1' } } });
    joined('r', 6, { scope: 'regional', epoch: 'g' });
    rooms.event({ ...event('r', 7, 'g7'), scope: 'regional' });
    rooms.rejoinAll();
    expect(joins().at(-1)).toEqual({ room: 'r', since: 5, epoch: 'e1', regional: { since: 7, epoch: 'g' } });
    region = 'us';
    rooms.rejoinAll();
    expect(joins().at(-1)).toEqual({ room: 'r', since: 5, epoch: 'e1' });
  });

  it('a retryable refusal joins again after a backoff delay; close() clears the retry timer and rejects the waiting join', async () => {
    create();
    const joining = rooms.join('r', () => undefined, {});
    expect(rooms.refused({ code: 'UNAVAILABLE', message: 'busy', room: 'r' })).toBe(true);
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(50);
    expect(joins()).toHaveLength(2);
    rooms.refused({ code: 'RATE_LIMITED', message: 'slow down', room: 'r' });
    rooms.close(new GeoClientError('CLOSED', 'closed'));
    await expect(joining).rejects.toMatchObject({ code: 'CLOSED' });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('refused for good: the room and its publishes go; without a waiting join the app hears of it as error', async () => {
    create();
    const joining = rooms.join('r', () => undefined, {});
    expect(rooms.refused({ code: 'FORBIDDEN', message: 'no', room: 'r' })).toBe(true);
    await expect(joining).rejects.toMatchObject({ name: 'GeoClientError', code: 'FORBIDDEN' });
    expect([rooms.has('r'), dropped]).toEqual([false, [['r', 'FORBIDDEN']]]);
    void rooms.join('s', () => undefined, {});
    joined('s', 0);
    rooms.connectionLost();
    rooms.rejoinAll(); // refused on the next connection: no join() waits for it any more
    expect(rooms.refused({ code: 'FORBIDDEN', message: 'no', room: 's' })).toBe(false);
    expect([rooms.has('s'), dropped.at(-1)]).toEqual([false, ['s', 'FORBIDDEN']]);
    expect(rooms.refused({ code: 'SOMETHING', message: 'not about a room' })).toBe(false);
  });

  it('leave(): geo.leave, the waiting join and the publishes rejected LEFT; geo.left with a code emits left', async () => {
    create();
    const left: GeoClientEvents['left'][] = [];
    events.on('left', (value) => left.push(value));
    const joining = rooms.join('r', () => undefined, {});
    rooms.leave('r');
    await expect(joining).rejects.toMatchObject({ code: 'LEFT' });
    expect(frames.at(-1)).toEqual({ event: 'geo.leave', data: { room: 'r' } });
    expect(dropped).toEqual([['r', 'LEFT']]);
    void rooms.join('s', () => undefined, {});
    joined('s', 0);
    rooms.left({ room: 's' }); // the answer to a leave(): nothing
    rooms.left({ room: 's', code: 'FORBIDDEN', message: 'token changed' });
    expect(left).toEqual([{ room: 's', code: 'FORBIDDEN', message: 'token changed' }]);
    expect(rooms.has('s')).toBe(false);
  });

  describe('rejoining many rooms in one frame (geo.welcome features: join.rooms)', () => {
    const welcome = (features?: string[]) =>
      rooms.restore({ connection_id: 'c', region: 'eu', sender: 'me', ...(features ? { features } : {}) });
    /** Joins `names`, each answered at seq 3, then loses the connection. */
    const inRooms = (...names: string[]): void => {
      for (const name of names) {
        void rooms.join(name, () => undefined, {});
        joined(name, 3);
      }
      rooms.connectionLost();
      frames = [];
    };

    it('sends one geo.join { rooms } with every position; answers and refusals stay per room, a retry is a single join', async () => {
      create();
      inRooms('a', 'b', 'c');
      welcome(['join.rooms', 'something.later']);
      rooms.rejoinAll();
      expect(joins()).toEqual([
        {
          rooms: [
            { room: 'a', since: 3, epoch: 'e1' },
            { room: 'b', since: 3, epoch: 'e1' },
            { room: 'c', since: 3, epoch: 'e1' },
          ],
        },
      ]);
      joined('a', 5);
      rooms.event(event('a', 4)); // replayed: the room's log check expected the answer from 3
      expect(counter.snapshot).toMatchObject({ events: 1, duplicates: 0, regressions: 0 });
      expect(rooms.refused({ code: 'RATE_LIMITED', message: 'slow down', room: 'b' })).toBe(true);
      expect(rooms.refused({ code: 'FORBIDDEN', message: 'no', room: 'c' })).toBe(false);
      await jest.advanceTimersByTimeAsync(50);
      expect(joins().slice(1)).toEqual([{ room: 'b', since: 3, epoch: 'e1' }]);
      expect([rooms.isJoined('a'), rooms.isJoined('b'), rooms.has('c')]).toEqual([true, false, false]);
    });

    it('one frame per room when the server does not list join.rooms, or for a single room', () => {
      create();
      inRooms('a', 'b');
      welcome();
      rooms.rejoinAll();
      expect(joins()).toEqual([
        { room: 'a', since: 3, epoch: 'e1' },
        { room: 'b', since: 3, epoch: 'e1' },
      ]);
      rooms.leave('b');
      frames = [];
      welcome(['join.rooms']);
      rooms.rejoinAll();
      expect(joins()).toEqual([{ room: 'a', since: 3, epoch: 'e1' }]);
      // A server without the feature after one with it (a failover to an older region): single frames again.
      void rooms.join('d', () => undefined, {});
      frames = [];
      welcome([]);
      rooms.rejoinAll();
      expect(joins().map((join) => join.room)).toEqual(['a', 'd']);
    });

    it('at most 100 rooms per frame, and never more bytes than maxFrameBytes', () => {
      create();
      inRooms(...Array.from({ length: 250 }, (_, i) => `room-${i}`));
      welcome(['join.rooms']);
      rooms.rejoinAll();
      expect(joins().map((join) => join.rooms.length)).toEqual([100, 100, 50]);
      expect(joins().flatMap((join) => join.rooms.map((entry: { room: string }) => entry.room))).toEqual(
        Array.from({ length: 250 }, (_, i) => `room-${i}`),
      );

      create({ maxFrameBytes: 1024 });
      const long = (i: number) => `${'x'.repeat(120)}-${i}`;
      inRooms(...Array.from({ length: 12 }, (_, i) => long(i)));
      welcome(['join.rooms']);
      rooms.rejoinAll();
      const sizes = frames.map((frame) => Buffer.byteLength(JSON.stringify(frame)));
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
      expect(joins().flatMap((join) => join.rooms.map((entry: { room: string }) => entry.room))).toEqual(
        Array.from({ length: 12 }, (_, i) => long(i)),
      );
    });
  });
});
