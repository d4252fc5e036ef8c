import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { GeoClientCloseCode, GeoCloseCode } from '../protocol.js';
import { RetrySchedule, SETTLED_MS, type FailoverTarget } from './retry-schedule.js';

/** When and where the next attempt goes after each kind of close (Math.random is 0.5: delays are half a ceiling, or three quarters for penalties). */
describe('RetrySchedule', () => {
  let failovers: number;
  const regions = (count: number): FailoverTarget => ({
    count,
    failOver: () => {
      failovers++;
    },
  });
  const backoff = { baseMs: 100, maxMs: 1000 };

  beforeEach(() => {
    failovers = 0;
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('a lost connection: full-jitter backoff growing with each failed attempt; after failoverAfter of them, the next region at once, then from attempt 1', () => {
    const schedule = new RetrySchedule({ backoff, failoverAfter: 3 });
    const delays = [1, 2, 3, 4].map(() => schedule.afterClose(1006, 0, regions(2)));
    expect(delays).toEqual([50, 100, 0, 100]); // the third failure moved on at once: attempts start again
    expect([failovers, schedule.attempt]).toEqual([1, 2]);
  });

  it('by default the lost region is tried once more, then the next one', () => {
    const schedule = new RetrySchedule({ backoff });
    expect([1, 2, 3].map(() => schedule.afterClose(1006, 0, regions(3)))).toEqual([50, 0, 100]);
    expect(failovers).toBe(1);
  });

  it('a silent connection (4102): the next region at once, not after failoverAfter tries', () => {
    const schedule = new RetrySchedule({ backoff, failoverAfter: 3 });
    expect(schedule.afterClose(GeoClientCloseCode.SILENT, 5000, regions(3))).toBe(50);
    expect(failovers).toBe(1);
    expect(schedule.afterClose(GeoClientCloseCode.SILENT, 0, regions(1))).toBe(100); // nowhere else to go
    expect(failovers).toBe(1);
  });

  it('with one region there is nowhere to fail over to: the backoff keeps growing', () => {
    const schedule = new RetrySchedule({ backoff, failoverAfter: 1 });
    expect([1, 2, 3, 4, 5].map(() => schedule.afterClose(1006, 0, regions(1)))).toEqual([50, 100, 200, 400, 500]);
    expect(failovers).toBe(0);
  });

  it('MOVING: at once, no attempt counted; SERVICE_RESTART: at once, to the next region if there is one', () => {
    const schedule = new RetrySchedule({ backoff });
    expect(schedule.afterClose(GeoClientCloseCode.MOVING, 0, regions(2))).toBe(0);
    expect(schedule.afterClose(GeoCloseCode.SERVICE_RESTART, 0, regions(1))).toBe(0);
    expect(failovers).toBe(0);
    expect(schedule.afterClose(GeoCloseCode.SERVICE_RESTART, 0, regions(2))).toBe(0);
    expect([failovers, schedule.attempt]).toEqual([1, 0]);
  });

  it('penalty closes: the same region, never at once, growing with each in a row; a welcome does not end the run, a settled connection does', () => {
    const schedule = new RetrySchedule({ backoff, failoverAfter: 1 });
    const penalty = () => schedule.afterClose(GeoCloseCode.POLICY_VIOLATION, 1000, regions(2));
    expect([penalty(), penalty()]).toEqual([150, 300]);
    schedule.welcomed();
    expect(penalty()).toBe(600);
    expect(schedule.afterClose(GeoCloseCode.SLOW_CONSUMER, SETTLED_MS, regions(2))).toBe(150);
    expect(failovers).toBe(0);
  });

  it('welcomed(), moved() and draining() reset what they say', () => {
    const schedule = new RetrySchedule({ backoff, failoverAfter: 2 });
    schedule.afterClose(1006, 0, regions(2));
    schedule.draining(); // the failures on this region no longer count
    schedule.afterClose(1006, 0, regions(2));
    expect([failovers, schedule.attempt]).toEqual([0, 2]);
    schedule.moved();
    expect(schedule.attempt).toBe(0);
    schedule.afterClose(1006, 0, regions(2));
    schedule.welcomed();
    expect(schedule.attempt).toBe(0);
    schedule.afterClose(1006, 0, regions(2));
    expect(failovers).toBe(0);
  });
});
