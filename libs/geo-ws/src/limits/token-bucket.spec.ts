import { describe, expect, it } from '@jest/globals';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the configured rate', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 3 });
    const t0 = Date.now();
    expect([bucket.take(t0), bucket.take(t0), bucket.take(t0), bucket.take(t0)]).toEqual([true, true, true, false]);
    expect(bucket.take(t0 + 50)).toBe(false); // half a token
    expect(bucket.take(t0 + 100)).toBe(true);
    expect(bucket.take(t0 + 10_000)).toBe(true);
    expect([bucket.take(t0 + 10_000), bucket.take(t0 + 10_000), bucket.take(t0 + 10_000)]).toEqual([true, true, false]); // capped at burst
  });

  it('lets work be paid afterwards: a debt delays the next token by debt / rate', () => {
    const bucket = new TokenBucket({ perSecond: 1000, burst: 500 });
    const t0 = Date.now();
    expect(bucket.msUntilAvailable(t0)).toBe(0);
    bucket.spend(2500, t0); // 500 in the bucket: 2000 in debt, 2001 ms until one token
    expect(bucket.msUntilAvailable(t0)).toBe(2001);
    expect(bucket.take(t0 + 1000)).toBe(false);
    expect(bucket.msUntilAvailable(t0 + 2002)).toBe(0);
  });

  it('takes up to N tokens at once: as many as there are, whole ones only', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 5 });
    const t0 = Date.now();
    expect(bucket.takeUpTo(3, t0)).toBe(3);
    expect(bucket.takeUpTo(3, t0)).toBe(2);
    expect(bucket.takeUpTo(3, t0)).toBe(0);
    expect(bucket.takeUpTo(3, t0 + 150)).toBe(1); // 1.5 tokens: one whole
    expect(bucket.take(t0 + 200)).toBe(true); // the half left plus half a token refilled
    expect(bucket.takeUpTo(0, t0 + 10_000)).toBe(0);
  });
});
