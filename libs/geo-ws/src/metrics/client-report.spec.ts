import { describe, expect, it } from '@jest/globals';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { MAX_REPORT_COUNT, parseClientReport } from './client-report.js';

describe('parseClientReport (geo.report data)', () => {
  it('takes the four counts, a missing one as 0, and ignores other fields', () => {
    expect(parseClientReport({ events: 5, duplicates: 1, regressions: 0, gaps: 2, later: 'x' })).toEqual({
      events: 5,
      duplicates: 1,
      regressions: 0,
      gaps: 2,
    });
    expect(parseClientReport({ events: MAX_REPORT_COUNT })).toEqual({ events: MAX_REPORT_COUNT, duplicates: 0, regressions: 0, gaps: 0 });
  });

  it.each([
    ['null', null],
    ['an array', [1, 2]],
    ['a number', 3],
    ['a negative count', { events: -1 }],
    ['a fraction', { gaps: 0.5 }],
    ['a string count', { duplicates: '1' }],
    ['past 1e9', { regressions: MAX_REPORT_COUNT + 1 }],
    ['not a safe integer', { events: 2 ** 53 }],
    ['NaN', { events: Number.NaN }],
  ])('refuses %s with MALFORMED_FRAME', (_what, data) => {
    let thrown: unknown;
    try {
      parseClientReport(data);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GeoProtocolError);
    expect((thrown as GeoProtocolError).code).toBe('MALFORMED_FRAME');
  });
});
