import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';

/** A consistency report a client sent (`geo.report`): deltas since its last one. */
export interface GeoClientReport {
  events: number;
  duplicates: number;
  regressions: number;
  gaps: number;
}

/**
 * The client's consistency report, sent every `report_ms` of `geo.welcome`. Kept out of
 * `GeoFrame` until the SDK's mirror of it (libs/geo-ws-client/src/protocol.ts) has it too.
 */
export const REPORT_FRAME = 'geo.report';

/** Largest count one report may carry: a client cannot move a counter by more per frame. */
export const MAX_REPORT_COUNT = 1_000_000_000;

const FIELDS = ['events', 'duplicates', 'regressions', 'gaps'] as const;

/**
 * Checks the data of a `geo.report` frame: an object whose `events`, `duplicates`,
 * `regressions` and `gaps` are non-negative safe integers up to 1e9 (a missing one is 0;
 * other fields are ignored, so clients may send more later). Anything else is
 * `MALFORMED_FRAME`.
 */
export function parseClientReport(data: unknown): GeoClientReport {
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'geo.report: data must be { events, duplicates, regressions, gaps }');
  }
  const given = data as Record<string, unknown>;
  const report: GeoClientReport = { events: 0, duplicates: 0, regressions: 0, gaps: 0 };
  for (const field of FIELDS) {
    const value = given[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_REPORT_COUNT) {
      throw new GeoProtocolError(
        GeoErrorCode.MALFORMED_FRAME,
        `geo.report: ${field} must be an integer from 0 to ${MAX_REPORT_COUNT}, got ${typeof value === 'number' ? value : typeof value}`,
      );
    }
    report[field] = value;
  }
  return report;
}
