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
});
