import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ConsistencyCounter } from './consistency.js';
import { ConsistencyReports } from './consistency-reports.js';

/** The report timer alone, on jest's fake clock. */
describe('ConsistencyReports', () => {
  let sent: unknown[];
  let socketOpen: boolean;
  let counter: ConsistencyCounter;
  let reports: ConsistencyReports;

  beforeEach(() => {
    jest.useFakeTimers();
    sent = [];
    socketOpen = true;
    counter = new ConsistencyCounter();
    reports = new ConsistencyReports(counter, {
      send: (event, data) => {
        if (!socketOpen) return false;
        sent.push({ [event]: data });
        return true;
      },
    });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('every report_ms, the counts since the last report; none when nothing happened; not lost while the socket is closed', async () => {
    reports.start(1000);
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([]);
    counter.delivered();
    counter.anomaly('duplicate');
    socketOpen = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([]);
    socketOpen = true;
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([{ 'geo.report': { events: 1, duplicates: 1, regressions: 0, gaps: 0 } }]);
  });

  it.each([undefined, '1000', -5, 0])('report_ms %p: no timer', (reportMs) => {
    reports.start(reportMs);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stop() (the connection ended) clears the timer; close() sends a last report only while reports run', () => {
    reports.start(1000);
    reports.start(2000); // a new welcome replaces the timer
    expect(jest.getTimerCount()).toBe(1);
    counter.delivered();
    reports.stop();
    expect(jest.getTimerCount()).toBe(0);
    reports.close();
    expect(sent).toEqual([]);
    reports.start(1000);
    reports.close();
    expect([sent, jest.getTimerCount()]).toEqual([[{ 'geo.report': { events: 1, duplicates: 0, regressions: 0, gaps: 0 } }], 0]);
  });
});
