import { describe, expect, it } from '@jest/globals';
import type { PublishLog } from '../load/load.types.js';
import { checkTakeovers } from './takeovers.js';

const publish = (room: string, sentAt: number, ackedAt?: number): PublishLog => ({
  number: sentAt,
  room,
  publisher: 'p',
  region: 'eu',
  sentAt,
  ...(ackedAt === undefined ? {} : { ackedAt }),
});

describe('checkTakeovers', () => {
  it('counts the rooms whose term went up and times each one from the kill to its first ack after it', () => {
    const check = checkTakeovers({
      killedAt: 10_000,
      killAtS: 6,
      terms: { a: 2, b: 1, c: 2, d: 3 },
      publishes: [
        publish('a', 9_000, 9_100), // before the kill: not counted
        publish('a', 10_500, 14_000),
        publish('a', 10_400, 13_000), // acked first, though sent later
        publish('b', 10_100, 10_200), // never taken over
        publish('c', 10_200, 17_000),
        publish('d', 10_300), // never acked
      ],
    });
    expect(check.rooms).toEqual(['a', 'c', 'd']);
    expect(check.neverWritable).toBe(1);
    expect(check.writableAfter).toMatchObject({ count: 2, max: 7_000 });
    expect(check.writableAfter.p50).toBeGreaterThanOrEqual(3_000);
  });

  it('has nothing to count without terms (a peer, or a server that did not say)', () => {
    expect(checkTakeovers({ killedAt: 1, killAtS: 1, terms: undefined, publishes: [] })).toMatchObject({
      rooms: [],
      neverWritable: 0,
      writableAfter: { count: 0 },
    });
  });
});
