import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { ClientConnection } from '../client-connection.js';
import { jsonCodec } from '../codec.js';
import { GeoClientError } from '../errors.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { AckFrame } from '../protocol.js';
import { Outbox } from './outbox.js';

/**
 * The outbox alone, against a recording connection on jest's fake clock: what it sends
 * when, what a refusal or a lost connection does to a queue, and the timers it leaves.
 */
describe('Outbox', () => {
  let sent: string[];
  let open: boolean;
  let joined: Set<string>;
  let rejoins: string[];
  let outbox: Outbox;

  const connection: ClientConnection = {
    get isOpen() {
      return open;
    },
    region: 'eu',
    send: () => true,
    sendEncoded: (wire) => void sent.push((JSON.parse(wire as string) as { data: { event_id: string } }).data.event_id),
  };

  const create = (options: Partial<GeoClientOptions> = {}): Outbox =>
    (outbox = new Outbox({ regions: [], backoff: { baseMs: 100, maxMs: 100 }, ...options }, jsonCodec, connection, {
      isJoined: (room) => joined.has(room),
      rejoin: (room) => rejoins.push(room),
    }));

  const publish = (id: string, room = 'r'): Promise<AckFrame> => outbox.publish(room, 'chat.message', { text: id }, id);
  const ack = (id: string, seq: number): void => outbox.acked({ event_id: id, seq });

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // backoff 50 ms
    sent = [];
    open = true;
    joined = new Set(['r']);
    rejoins = [];
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('sends one publish at a time by default, the next on the ack; resolves each with its ack', async () => {
    create();
    const acks = [publish('a'), publish('b')];
    expect(sent).toEqual(['a']);
    ack('a', 1);
    expect(sent).toEqual(['a', 'b']);
    ack('b', 2);
    await expect(Promise.all(acks)).resolves.toEqual([
      { event_id: 'a', seq: 1 },
      { event_id: 'b', seq: 2 },
    ]);
    expect(outbox.size).toBe(0);
  });

  it('holds a queue while the connection is not open or the room not joined; pump() sends it', () => {
    create({ maxInFlight: 2 });
    open = false;
    void publish('a');
    void publish('b');
    void publish('c');
    expect(sent).toEqual([]);
    open = true;
    joined.clear();
    outbox.pump('r');
    expect(sent).toEqual([]);
    joined.add('r');
    outbox.pump('r');
    expect(sent).toEqual(['a', 'b']); // the window: two from the oldest unacknowledged
    expect(outbox.size).toBe(3);
  });

  it('a retryable refusal: the queue starts again from its oldest publish after one backoff delay, one timer per queue', async () => {
    create({ maxInFlight: 3 });
    void publish('a');
    void publish('b');
    void publish('c');
    outbox.refused('b', { code: 'UNAVAILABLE', message: 'busy' });
    outbox.refused('c', { code: 'RATE_LIMITED', message: 'slow down' });
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(49);
    expect(sent).toEqual(['a', 'b', 'c']);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toEqual(['a', 'b', 'c', 'a']); // one at a time while a publish of the queue has failed
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a lost connection: everything sent counts as failed and is resent from the oldest, one at a time', () => {
    create({ maxInFlight: 2 });
    void publish('a');
    void publish('b');
    outbox.connectionLost();
    outbox.pump('r');
    expect(sent).toEqual(['a', 'b', 'a']);
    ack('a', 1);
    expect(sent).toEqual(['a', 'b', 'a', 'b']);
  });

  it('NOT_JOINED: the room is joined again (up to 3 times), then the publish rejects', async () => {
    create();
    const waiting = publish('a');
    for (let i = 0; i < 3; i++) {
      outbox.refused('a', { code: 'NOT_JOINED', message: 'not joined' });
      outbox.pump('r');
    }
    expect(rejoins).toEqual(['r', 'r', 'r']);
    outbox.refused('a', { code: 'NOT_JOINED', message: 'not joined' });
    await expect(waiting).rejects.toMatchObject({ code: 'NOT_JOINED' });
    expect(rejoins).toHaveLength(3);
  });

  it('refused for good: only that publish rejects; a late answer for it changes nothing', async () => {
    create({ maxInFlight: 2 });
    const [a, b] = [publish('a'), publish('b')];
    outbox.refused('a', { code: 'FORBIDDEN', message: 'no' });
    await expect(a).rejects.toMatchObject({ name: 'GeoClientError', code: 'FORBIDDEN' });
    outbox.refused('a', { code: 'UNAVAILABLE', message: 'late' });
    ack('a', 9);
    expect(jest.getTimerCount()).toBe(0);
    ack('b', 1);
    await expect(b).resolves.toEqual({ event_id: 'b', seq: 1 });
  });

  it('a pending event_id or an unencodable payload is rejected at once and never queued', async () => {
    create();
    void publish('a');
    await expect(publish('a')).rejects.toMatchObject({ code: 'INVALID_ENVELOPE' });
    await expect(outbox.publish('r', 'chat.message', { n: 1n }, 'big')).rejects.toMatchObject({ code: 'MALFORMED_FRAME' });
    expect(outbox.size).toBe(1);
  });

  it('drop() rejects one room; close() rejects the rest and clears every retry timer', async () => {
    create();
    const [r1, r2] = [publish('a'), publish('b')];
    joined.add('s');
    const s1 = publish('c', 's');
    outbox.refused('c', { code: 'UNAVAILABLE', message: 'busy' });
    expect(jest.getTimerCount()).toBe(1);
    outbox.drop('r', new GeoClientError('LEFT', 'left'));
    await expect(Promise.allSettled([r1, r2])).resolves.toMatchObject([
      { status: 'rejected', reason: { code: 'LEFT' } },
      { status: 'rejected', reason: { code: 'LEFT' } },
    ]);
    outbox.close(new GeoClientError('CLOSED', 'closed'));
    await expect(s1).rejects.toMatchObject({ code: 'CLOSED' });
    expect([outbox.size, jest.getTimerCount()]).toEqual([0, 0]);
  });
});
