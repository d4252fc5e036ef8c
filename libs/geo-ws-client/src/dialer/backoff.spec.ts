import { describe, expect, it } from '@jest/globals';
import { backoffDelay, penaltyDelay } from './backoff.js';

describe('backoffDelay', () => {
  it('is uniform between 0 and an exponentially growing ceiling (full jitter)', () => {
    expect([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, { baseMs: 100, maxMs: 10_000 }, () => 0.999))).toEqual([99, 199, 399, 799]);
    expect(backoffDelay(3, { baseMs: 100 }, () => 0)).toBe(0);
  });

  it('never exceeds the cap, however many attempts', () => {
    for (const attempt of [10, 50, 1000]) expect(backoffDelay(attempt, { baseMs: 250, maxMs: 8000 }, () => 0.999999)).toBeLessThan(8000);
  });

  it('spreads clients out: 1000 clients at attempt 5 do not retry together', () => {
    const delays = Array.from({ length: 1000 }, () => backoffDelay(5, { baseMs: 250, maxMs: 8000 }));
    const buckets = new Set(delays.map((delay) => Math.floor(delay / 500)));
    expect(buckets.size).toBeGreaterThanOrEqual(14); // spread over the whole 0-8 s window
    expect(Math.max(...delays)).toBeLessThan(8000);
  });
});

describe('penaltyDelay', () => {
  it('is at least half of the same growing ceiling (equal jitter): never 0', () => {
    expect([0, 1, 2, 3].map((attempt) => penaltyDelay(attempt, { baseMs: 100, maxMs: 10_000 }, () => 0))).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map((attempt) => penaltyDelay(attempt, { baseMs: 100, maxMs: 10_000 }, () => 0.999))).toEqual([99, 199, 399, 799]);
  });

  it('stays within [maxMs / 2, maxMs] once the ceiling reaches the cap', () => {
    for (const attempt of [5, 50]) {
      expect(penaltyDelay(attempt, { baseMs: 250, maxMs: 8000 }, () => 0)).toBe(4000);
      expect(penaltyDelay(attempt, { baseMs: 250, maxMs: 8000 }, () => 0.999999)).toBeLessThan(8000);
    }
  });
});
