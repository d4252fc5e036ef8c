import { afterEach, describe, expect, it } from '@jest/globals';
import { ExpiryWheel, type Expiring } from './expiry-wheel.js';

describe('ExpiryWheel', () => {
  let clock = 1_000_000;
  let wheel: ExpiryWheel | undefined;
  const start = (): ExpiryWheel => (wheel = new ExpiryWheel(250, () => clock));
  const item = (log: string[], name: string): Expiring => ({ expired: () => log.push(`${name}@${clock}`) });

  afterEach(() => wheel?.stop());

  it('ends an item after its deadline, never before, and at most one resolution late', () => {
    clock = 1_000_000;
    const log: string[] = [];
    const wheel = start();
    wheel.schedule(item(log, 'a'), 1_000_600);
    for (clock = 1_000_000; clock < 1_000_750; clock += 50) wheel.advance();
    expect(log).toEqual([]);
    clock = 1_000_750;
    wheel.advance();
    expect(log).toEqual(['a@1000750']);
    clock = 1_002_000;
    wheel.advance();
    expect(log).toHaveLength(1); // once
  });

  it('replaces a deadline (a refreshed token) and cancels one (a closed connection)', () => {
    clock = 2_000_000;
    const log: string[] = [];
    const wheel = start();
    const refreshed = item(log, 'refreshed');
    const closed = item(log, 'closed');
    wheel.schedule(refreshed, 2_000_100);
    wheel.schedule(closed, 2_000_100);
    wheel.schedule(refreshed, 2_010_000);
    wheel.cancel(closed);
    clock = 2_005_000;
    wheel.advance();
    expect(log).toEqual([]);
    expect(closed.expirySlot).toBeUndefined();
    clock = 2_010_250;
    wheel.advance();
    expect(log).toEqual(['refreshed@2010250']);
  });

  it('ends a deadline already past at the next turn, and catches up after a blocked loop or a clock jump', () => {
    clock = 3_000_000;
    const log: string[] = [];
    const wheel = start();
    wheel.schedule(item(log, 'past'), 2_000_000);
    wheel.schedule(item(log, 'soon'), 3_000_300);
    wheel.schedule(item(log, 'next-week'), 3_000_000 + 7 * 86_400_000);
    clock = 3_000_250;
    wheel.advance();
    expect(log).toEqual(['past@3000250']);
    clock += 30 * 86_400_000; // a month without a turn
    wheel.advance();
    expect(log.slice(1).map((entry) => entry.split('@')[0])).toEqual(['soon', 'next-week']);
  });

  it('scheduling undefined only cancels', () => {
    clock = 4_000_000;
    const log: string[] = [];
    const wheel = start();
    const it1 = item(log, 'x');
    wheel.schedule(it1, 4_000_100);
    wheel.schedule(it1, undefined);
    clock = 4_001_000;
    wheel.advance();
    expect(log).toEqual([]);
  });
});
