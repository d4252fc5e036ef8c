import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ConsistencyCounter, LogCheck, RECENT_IDS_PER_LOG, RecentIds, reportInterval } from './consistency.js';

describe('RecentIds: the duplicate check’s bounded memory', () => {
  it('holds the last N ids and forgets older ones', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
    expect(['a', 'b', 'c', 'd'].map((id) => ids.has(id))).toEqual([false, true, true, true]);
    expect(ids.size).toBe(3);
    ids.clear();
    expect(ids.size).toBe(0);
    expect(ids.has('d')).toBe(false);
  });

  it('takes no fresh id for one it holds (hashes of 100,000 random UUIDs against a full window)', () => {
    const ids = new RecentIds();
    for (let i = 0; i < RECENT_IDS_PER_LOG; i++) ids.add(randomUUID());
    let confused = 0;
    for (let i = 0; i < 100_000; i++) if (ids.has(randomUUID())) confused++;
    expect(confused).toBe(0);
  });

  it('a log check remembers at most RECENT_IDS_PER_LOG ids, however many events pass', () => {
    const check = new LogCheck();
    check.joining(undefined);
    check.joined({ seq: 0, epoch: 'e', recovered: true, contiguous: true });
    for (let seq = 1; seq <= 10_000; seq++) expect(check.check(seq, `id${seq}`, seq - 1)).toEqual({ deliver: true });
    expect((check as unknown as { ids: RecentIds }).ids.size).toBe(RECENT_IDS_PER_LOG);
    // Within the window an id stored again is caught; beyond it, it cannot be.
    expect(check.check(10_001, 'id10000', 10_000)).toEqual({ deliver: false, anomaly: 'duplicate' });
    expect(check.check(10_002, `id${10_000 - RECENT_IDS_PER_LOG}`, 10_001)).toEqual({ deliver: true });
  });
});

describe('ConsistencyCounter', () => {
  it('reports deltas since the last report it was told was sent, and nothing when nothing happened', () => {
    const counter = new ConsistencyCounter();
    expect(counter.peekReport()).toBeUndefined();
    counter.delivered();
    counter.anomaly('gap');
    expect(counter.peekReport()).toEqual({ events: 1, duplicates: 0, regressions: 0, gaps: 1 });
    expect(counter.peekReport()).toEqual({ events: 1, duplicates: 0, regressions: 0, gaps: 1 }); // not sent: kept
    counter.markReported();
    expect(counter.peekReport()).toBeUndefined();
    counter.anomaly('regression');
    counter.anomaly('duplicate');
    expect(counter.peekReport()).toEqual({ events: 0, duplicates: 1, regressions: 1, gaps: 0 });
    expect(counter.snapshot).toEqual({ events: 1, duplicates: 1, regressions: 1, gaps: 1 });
  });
});

describe('reportInterval', () => {
  it('takes a positive number of ms (at least 100), nothing else', () => {
    expect([undefined, null, '1000', 0, -1, Number.NaN, Infinity].map(reportInterval)).toEqual(Array(7).fill(undefined));
    expect([1, 100, 15_000.7, 2 ** 40].map(reportInterval)).toEqual([100, 100, 15_000, 2 ** 31 - 1]);
  });
});
