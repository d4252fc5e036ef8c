import { afterEach, describe, expect, it } from '@jest/globals';
import { GeoClient, GeoClientError, type GeoClientOptions } from '../geo-client.js';
import type { AckFrame } from '../protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, until, within } from '../testing/index.js';

/**
 * The client's outbox against a fake region (testing/fake-region.ts): a real `ws` server
 * that speaks the protocol and lets each test decide how every publish attempt is answered.
 */

describe('GeoClient outbox (fake region over a real WebSocket)', () => {
  let fake: FakeRegion;
  let client: GeoClient | undefined;

  const connect = async (options: Partial<GeoClientOptions> = {}): Promise<GeoClient> => {
    fake = await FakeRegion.start();
    client = await GeoClient.connect({
      regions: fake.regions,
      ...TEST_CLIENT_OPTIONS,
      ...options,
    });
    await client.join('r', () => undefined);
    return client;
  };

  /** Publishes m0..m(n-1) to room r at once (no awaiting in between). */
  const publishMany = (n: number, from = 0): Promise<AckFrame>[] =>
    Array.from({ length: n }, (_, i) => client!.publish('r', 'chat.message', { text: `m${from + i}` }, `m${from + i}`));

  afterEach(async () => {
    client?.close();
    client = undefined;
    await fake?.close();
  });

  describe('ordering (issue 9, item 3)', () => {
    it("a retryable error on one publish: nothing published after it is stored before it; the log holds the client's order", async () => {
      await connect();
      fake.answer = ({ eventId, attempt }) => (eventId === 'm2' && attempt <= 2 ? { code: 'UNAVAILABLE' } : 'store');
      const acks = await within(Promise.all(publishMany(10)), 5000, 'the ten publishes');
      const expected = Array.from({ length: 10 }, (_, i) => `m${i}`);
      expect(fake.stored('r')).toEqual(expected);
      expect(acks.map((ack) => ack.seq)).toEqual(expected.map((_, i) => i + 1));
      // One publish in flight per room: every frame is the oldest unacknowledged one.
      expect(fake.ids()).toEqual(['m0', 'm1', 'm2', 'm2', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
      expect(client!.unacknowledged).toBe(0);
    });

    it('RATE_LIMITED for a whole window: one retry schedule for the queue, resent as one burst in publish order', async () => {
      await connect({ maxInFlight: 8 });
      fake.answer = ({ attempt }) => (attempt === 1 ? { code: 'RATE_LIMITED' } : 'store');
      const acks = await within(Promise.all(publishMany(8)), 5000, 'the eight publishes');
      const expected = Array.from({ length: 8 }, (_, i) => `m${i}`);
      expect(fake.ids()).toEqual([...expected, ...expected]);
      expect(fake.stored('r')).toEqual(expected);
      expect(acks.map((ack) => ack.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('with maxInFlight > 1, a retryable error resends that publish and every later unacknowledged one, in the original order', async () => {
      await connect({ maxInFlight: 4 });
      // m2 fails twice. m3..m5, already in flight when it first failed, are stored before
      // it: the overtaking maxInFlight > 1 allows. Nothing sent after that failure may be.
      fake.answer = ({ eventId, attempt }) => (eventId === 'm2' && attempt <= 2 ? { code: 'UNAVAILABLE' } : 'store');
      const acks = await within(Promise.all(publishMany(12)), 5000, 'the twelve publishes');
      const stored = fake.stored('r');
      const ids = fake.ids();
      expect([...stored].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`).sort());
      expect(ids.slice(0, 6)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']); // the window, then m2 failed
      // While m2 is unacknowledged the queue sends one publish at a time, from its oldest.
      expect(ids.slice(6)).toEqual(['m2', 'm2', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11']);
      expect(stored).toEqual(['m0', 'm1', 'm3', 'm4', 'm5', 'm2', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11']);
      // No publish was overtaken by more than maxInFlight - 1 later ones.
      for (const [position, id] of stored.entries()) {
        const later = stored.slice(0, position).filter((other) => Number(other.slice(1)) > Number(id.slice(1)));
        expect(later.length).toBeLessThanOrEqual(3);
      }
      // Every ack carries the seq the log gave that event.
      for (const [i, ack] of acks.entries()) expect(stored[ack.seq! - 1]).toBe(`m${i}`);
    });

    it('with maxInFlight > 1, later publishes the log already stored are resent after the failed one and keep their original seq', async () => {
      await connect({ maxInFlight: 3 });
      // m1 is refused; m2, in flight with it, is stored but its ack is lost.
      fake.answer = ({ eventId, attempt }) => {
        if (eventId === 'm1' && attempt === 1) return { code: 'UNAVAILABLE' };
        if (eventId === 'm2' && attempt === 1) return 'store-no-ack';
        return 'store';
      };
      const acks = await within(Promise.all(publishMany(4)), 5000, 'the four publishes');
      // m3 went out (and was acked) when m0 was acked, before m1's refusal arrived. The
      // queue then started again from m1, one at a time until m1 was stored, then m2 again.
      expect(fake.ids()).toEqual(['m0', 'm1', 'm2', 'm3', 'm1', 'm2']);
      expect(fake.stored('r')).toEqual(['m0', 'm2', 'm3', 'm1']);
      expect(acks.map((ack) => [ack.seq, ack.duplicate ?? false])).toEqual([
        [1, false],
        [4, false],
        [2, true],
        [3, false],
      ]);
    });

    it('with maxInFlight > 1, a slow publish holds the window: only the maxInFlight - 1 after it can be stored before it', async () => {
      await connect({ maxInFlight: 3 });
      fake.answer = ({ eventId }) => (eventId === 'm0' ? { delayMs: 150 } : 'store');
      await within(Promise.all(publishMany(8)), 5000, 'the eight publishes');
      // m1 and m2 were acked long before m0, yet m3 (stored at once when sent) waited for
      // m0: the window is anchored at the oldest unacknowledged publish.
      expect(fake.stored('r')).toEqual(['m1', 'm2', 'm0', 'm3', 'm4', 'm5', 'm6', 'm7']);
    });

    it('a connection lost with publishes outstanding: after the rejoin they are sent from the oldest, in order, each stored once', async () => {
      await connect();
      fake.answer = ({ eventId, attempt }) => (eventId === 'm2' && attempt === 1 ? 'drop' : 'store');
      await within(Promise.all(publishMany(6)), 5000, 'the six publishes');
      expect(fake.stored('r')).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      expect(fake.ids()).toEqual(['m0', 'm1', 'm2', 'm2', 'm3', 'm4', 'm5']);
      expect(fake.joins).toEqual(['r', 'r']);
    });

    it('NOT_JOINED for a publish (the server dropped the room): the client joins again, then resends in order', async () => {
      await connect();
      await client!.publish('r', 'chat.message', { text: 'first' }, 'm0');
      fake.forget('r');
      await within(Promise.all(publishMany(3, 1)), 5000, 'the publishes after the room was dropped');
      expect(fake.stored('r')).toEqual(['m0', 'm1', 'm2', 'm3']);
      expect(fake.joins).toEqual(['r', 'r']);
    });
  });

  describe('refusals: rejected, never pending forever (issue 9, item 5)', () => {
    it.each(['MALFORMED_FRAME', 'INVALID_ENVELOPE', 'VALIDATION_FAILED', 'FORBIDDEN', 'PAYLOAD_TOO_LARGE', 'SOMETHING_NEW'])(
      'a %s refusal rejects that publish after one attempt; the next ones go on',
      async (code) => {
        await connect();
        fake.answer = ({ eventId }) => (eventId === 'm1' ? { code } : 'store');
        const [first, refused, third] = publishMany(3);
        await expect(within(refused, 3000, 'the refused publish')).rejects.toMatchObject({ name: 'GeoClientError', code });
        await within(Promise.all([first, third]), 3000, 'the others');
        expect(fake.ids()).toEqual(['m0', 'm1', 'm2']);
        expect(fake.stored('r')).toEqual(['m0', 'm2']);
        expect(client!.unacknowledged).toBe(0);
      },
    );

    it('INTERNAL is retried maxInternalRetries times (default 3), then the publish rejects with INTERNAL', async () => {
      await connect();
      fake.answer = ({ eventId }) => (eventId === 'm1' ? { code: 'INTERNAL' } : 'store');
      const [first, failing, third] = publishMany(3);
      await expect(within(failing, 5000, 'the publish answered INTERNAL')).rejects.toMatchObject({ code: 'INTERNAL' });
      await within(Promise.all([first, third]), 3000, 'the others');
      expect(fake.ids()).toEqual(['m0', 'm1', 'm1', 'm1', 'm1', 'm2']);
      expect(fake.stored('r')).toEqual(['m0', 'm2']);
      expect(client!.unacknowledged).toBe(0);
    });

    it('INTERNAL retries are configurable (maxInternalRetries: 0 rejects on the first)', async () => {
      await connect({ maxInternalRetries: 0 });
      fake.answer = () => ({ code: 'INTERNAL' });
      await expect(within(client!.publish('r', 'chat.message', { text: 'x' }, 'x1'), 3000, 'the publish')).rejects.toMatchObject({
        code: 'INTERNAL',
      });
      expect(fake.ids()).toEqual(['x1']);
    });

    it('a join refused for good rejects the publishes waiting for that room', async () => {
      await connect();
      fake.joinAnswer = (room) => (room === 'closed-room' ? { code: 'FORBIDDEN' } : 'ok');
      const joining = client!.join('closed-room', () => undefined);
      const waiting = client!.publish('closed-room', 'chat.message', { text: 'never' }, 'w1');
      await expect(within(joining, 3000, 'the join')).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(within(waiting, 3000, 'the publish waiting for the join')).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(client!.unacknowledged).toBe(0);
      expect(fake.ids()).toEqual([]);
    });
  });

  describe('checked before sending: rejected at once, never in the outbox (issue 9, item 5)', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < depth; i++) value = { a: value };
      return value;
    };

    it.each([
      [
        'a cycle',
        () => {
          const cyclic: Record<string, unknown> = { text: 'loop' };
          cyclic.self = cyclic;
          return cyclic;
        },
      ],
      ['a BigInt', () => ({ text: 'big', n: 10n })],
      ['nesting that overflows the encoder (depth 5,000)', () => nested(5000)],
      ['nesting past the server limit (payload depth 32)', () => nested(32)],
    ])('%s: MALFORMED_FRAME, nothing sent, nothing pending, and the client keeps working across a reconnect', async (_, payload) => {
      await connect();
      const refused = client!.publish('r', 'chat.message', payload(), 'bad1');
      await expect(within(refused, 1000, 'the unencodable publish')).rejects.toMatchObject({
        name: 'GeoClientError',
        code: 'MALFORMED_FRAME',
      });
      expect(client!.unacknowledged).toBe(0);
      await client!.publish('r', 'chat.message', { text: 'after' }, 'ok1');
      fake.dropAll(); // the rejoin resends the outbox: nothing of the refused publish may be in it
      await until(() => fake.joins.length === 2, 'the rejoin');
      await within(client!.publish('r', 'chat.message', { text: 'after the reconnect' }, 'ok2'), 3000, 'a publish after the reconnect');
      expect(fake.ids()).toEqual(['ok1', 'ok2']);
      expect(fake.stored('r')).toEqual(['ok1', 'ok2']);
    });

    it('a payload at the server depth limit (31 levels) is sent; one more level is refused', async () => {
      await connect();
      await within(client!.publish('r', 'chat.message', nested(31), 'deep31'), 3000, 'depth 31');
      await expect(client!.publish('r', 'chat.message', nested(32), 'deep32')).rejects.toMatchObject({ code: 'MALFORMED_FRAME' });
      expect(fake.ids()).toEqual(['deep31']);
    });

    it('a frame larger than maxFrameBytes (default 64 KiB): PAYLOAD_TOO_LARGE at once', async () => {
      await connect();
      await expect(client!.publish('r', 'chat.message', { text: 'x'.repeat(70_000) }, 'big1')).rejects.toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
      });
      await within(client!.publish('r', 'chat.message', { text: 'é'.repeat(30_000) }, 'fits'), 3000, 'a 60 KB frame');
      await expect(client!.publish('r', 'chat.message', { text: 'é'.repeat(33_000) }, 'big2')).rejects.toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
      });
      expect(fake.ids()).toEqual(['fits']);
      expect(client!.unacknowledged).toBe(0);
    });

    it('maxFrameBytes is configurable', async () => {
      await connect({ maxFrameBytes: 1000 });
      await expect(client!.publish('r', 'chat.message', { text: 'x'.repeat(1000) }, 'big')).rejects.toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
      });
      await within(client!.publish('r', 'chat.message', { text: 'x'.repeat(800) }, 'small'), 3000, 'a small publish');
    });

    it('no JSON form, a protocol event name, a bad or pending event_id: INVALID_ENVELOPE at once', async () => {
      await connect();
      fake.answer = () => 'silent';
      await expect(client!.publish('r', 'chat.message', undefined, 'u1')).rejects.toMatchObject({ code: 'INVALID_ENVELOPE' });
      await expect(client!.publish('r', 'geo.join', { room: 'x' }, 'g1')).rejects.toMatchObject({ code: 'INVALID_ENVELOPE' });
      await expect(client!.publish('r', 'chat.message', { text: 'x' }, 'has space')).rejects.toMatchObject({ code: 'INVALID_ENVELOPE' });
      const pending = client!.publish('r', 'chat.message', { text: 'x' }, 'same');
      await expect(client!.publish('r', 'chat.message', { text: 'y' }, 'same')).rejects.toMatchObject({ code: 'INVALID_ENVELOPE' });
      expect(client!.unacknowledged).toBe(1);
      client!.close();
      await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
      await expect(client!.publish('r', 'chat.message', { text: 'x' }, 'late')).rejects.toBeInstanceOf(GeoClientError);
    });
  });
});
