import type { GeoEnvelope } from '@geo-ws/nest';

/** What the consistency checker found across every client's log of one room. */
export interface CheckReport {
  clients: number;
  events: number;
  lost: number;
  duplicated: number;
  /** Places where a client's seq did not increase. */
  reordered: number;
  divergent: number;
}

/**
 * Compares every client's received log of a room with the authoritative log (the
 * transport's): events missing (lost), seen twice (duplicated), seqs that went backwards
 * (reordered), and clients whose sequence differs from the log's (divergent).
 */
export function checkLogs(authoritative: GeoEnvelope[], received: GeoEnvelope[][]): CheckReport {
  const report: CheckReport = {
    clients: received.length,
    events: authoritative.length,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    divergent: 0,
  };
  const expected = authoritative.map((event) => event.event_id);
  for (const log of received) {
    const ids = log.map((event) => event.event_id);
    const unique = new Set(ids);
    report.duplicated += ids.length - unique.size;
    report.lost += expected.filter((id) => !unique.has(id)).length;
    for (let i = 1; i < log.length; i++) if ((log[i].seq ?? 0) <= (log[i - 1].seq ?? 0)) report.reordered++;
    if (ids.join() !== expected.join()) report.divergent++;
  }
  return report;
}
