import type { Anomalies, LatencyStats } from '../check/check.types.js';
import type { ImplRun, LabReport, ServerStats } from './report.types.js';

/** How a figure reads: a count, milliseconds, bytes, a rate, or text. */
export type Unit = 'count' | 'ms' | 'bytes' | 'rate' | 'cpu' | 'text';

/** One line of the side-by-side summary: a value per run, and whether a ratio to the base run means something. */
export interface SummaryRow {
  label: string;
  unit: Unit;
  values: (number | string | undefined)[];
  /** Show `<impl>/<base>` ratios (not for anomalies or counts where a ratio says nothing). */
  ratio: boolean;
  /** Anomaly rows: zero is good, anything else is flagged. */
  anomaly?: boolean;
}

export interface SummarySection {
  title: string;
  rows: SummaryRow[];
}

/** The anomaly counts in reading order, with the words the reports use. */
export const ANOMALY_LABELS: readonly (readonly [keyof Anomalies, string])[] = [
  ['lost', 'lost (member × acked event)'],
  ['duplicated', 'duplicated deliveries'],
  ['divergentMembers', 'divergent members'],
  ['orderViolations', 'order violations'],
  ['seqGaps', 'seq gaps'],
  ['appliedTwice', 'applied twice'],
  ['ackedMissing', 'acked, reached no member'],
];

/** Column heading of a run: the impl, with the broker when one impl ran on several. */
export function runLabel(report: LabReport, run: ImplRun): string {
  const sameImpl = report.runs.filter((r) => r.impl === run.impl).length > 1;
  return sameImpl ? `${run.impl}@${run.broker}` : run.impl;
}

/** The run every ratio is measured against: geo-ws when it ran, else none. */
export function baseRun(report: LabReport): ImplRun | undefined {
  return report.runs.length > 1 ? report.runs.find((run) => run.impl === 'geo') : undefined;
}

/** `a / b` as "1.3x" (two significant digits), or '' when it means nothing. */
export function ratioText(value: number | string | undefined, base: number | string | undefined): string {
  if (typeof value !== 'number' || typeof base !== 'number' || !Number.isFinite(value) || !Number.isFinite(base)) return '';
  if (base === 0) return value === 0 ? '1x' : '';
  const r = value / base;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2)}x`;
}

/** The same figures the terminal table, the HTML summary and the docs quote. */
export function summarySections(report: LabReport): SummarySection[] {
  const runs = report.runs;
  const row = (label: string, unit: Unit, get: (run: ImplRun) => number | string | undefined, ratio = true): SummaryRow => ({
    label,
    unit,
    values: runs.map(get),
    ratio,
  });
  return [
    {
      title: 'Anomalies (geo-ws promises zero)',
      rows: ANOMALY_LABELS.map(([key, label]) => ({ ...row(label, 'count', (run) => run.check.anomalies[key], false), anomaly: true })),
    },
    {
      title: 'Traffic',
      rows: [
        row('broker', 'text', (run) => run.broker, false),
        row('clients (connect failed)', 'text', (run) => `${fmtCount(run.connect.clients)} (${fmtCount(run.connect.failed)})`, false),
        row(
          'publishes acked / total',
          'text',
          (run) => `${fmtCount(run.check.publishes.acked)} / ${fmtCount(run.check.publishes.total)}`,
          false,
        ),
        row(
          'publishes failed / unacked',
          'text',
          (run) => `${fmtCount(run.check.publishes.failed)} / ${fmtCount(run.check.publishes.unacked)}`,
          false,
        ),
        row('deliveries', 'count', (run) => run.check.deliveries),
        row('throughput (deliveries/s)', 'rate', (run) => run.throughput),
        row('gaps announced to clients', 'count', (run) => run.check.gaps, false),
      ],
    },
    {
      title: 'Latency, same region (ms)',
      rows: (['p50', 'p95', 'p99', 'max'] as const).map((p) =>
        row(p, 'ms', (run) => statOrNone(run.check.latency.same.count, run.check.latency.same[p])),
      ),
    },
    {
      title: 'Latency, cross region (ms)',
      rows: (['p50', 'p95', 'p99', 'max'] as const).map((p) =>
        row(p, 'ms', (run) => statOrNone(run.check.latency.cross.count, run.check.latency.cross[p])),
      ),
    },
    {
      title: 'Failover (disconnect → back in every room)',
      rows: [
        row('outages', 'count', (run) => run.check.failover.count, false),
        row('p50 (ms)', 'ms', (run) => statOrNone(run.check.failover.count, run.check.failover.p50)),
        row('p99 (ms)', 'ms', (run) => statOrNone(run.check.failover.count, run.check.failover.p99)),
      ],
    },
    {
      title: 'Connect',
      rows: [
        row('p50 (ms)', 'ms', (run) => run.connect.p50),
        row('p99 (ms)', 'ms', (run) => run.connect.p99),
        row('all clients (s)', 'ms', (run) => run.connect.totalMs / 1000),
      ],
    },
    {
      title: 'Server cost',
      rows: [
        row('CPU-s per 1k deliveries', 'cpu', (run) => run.cpuPer1kDeliveries),
        row('client bytes read per delivery', 'count', (run) => run.bytesReadPerDelivery),
        row('server CPU-s', 'cpu', (run) => run.server.cpuSeconds),
        row('broker CPU-s', 'cpu', (run) => run.server.brokerCpuSeconds),
        row('load workers CPU-s', 'cpu', (run) => run.server.loadCpuSeconds),
        row('server RSS loaded', 'bytes', (run) => run.server.rssLoadedBytes),
        row('server RSS peak', 'bytes', (run) => serverRssPeak(run.server)),
        row('bytes per connection', 'bytes', (run) => run.server.bytesPerConnection),
      ],
    },
  ];
}

/** Columns of the failover timeline table, after the phase's name. */
export const PHASE_COLUMNS = ['n', 'p50', 'p95', 'p99', 'max'] as const;

/** A run's failover timeline as a heading and rows of cells (phase, n, p50, p95, p99, max, meaning), or none without failovers. */
export function failoverPhaseTable(run: ImplRun): { heading: string; rows: string[][] } | undefined {
  const phases = run.failoverPhases;
  if (!phases || phases.failovers === 0) return undefined;
  const heading =
    `Failover timeline (${run.impl}, ms): ${fmtCount(phases.failovers)} failovers, ${fmtCount(phases.completed)} back in every room, ` +
    `attempts p50 ${fmtCount(phases.attempts.p50)} / max ${fmtCount(phases.attempts.max)}`;
  const rows = phases.phases.map((stats) => [
    stats.phase,
    fmtCount(stats.count),
    ...(stats.count > 0 ? [stats.p50, stats.p95, stats.p99, stats.max].map((ms) => formatValue(ms, 'ms')) : ['–', '–', '–', '–']),
    stats.meaning,
  ]);
  return { heading, rows };
}

/** Columns of the latency-by-publisher-region table, after the region. */
export const PUBLISHER_REGION_COLUMNS = ['same n', 'same p50', 'same p99', 'cross n', 'cross p50', 'cross p99'] as const;

/**
 * A run's latency split by publisher region as a heading and rows of cells (region, then
 * PUBLISHER_REGION_COLUMNS: same-region and cross-region deliveries of that region's events),
 * or none when the run has no such split (no deliveries, or a report from before it).
 */
export function publisherRegionTable(report: LabReport, run: ImplRun): { heading: string; rows: string[][] } | undefined {
  const regions = run.check.latency.byPublisherRegion;
  if (!regions?.length) return undefined;
  const cells = (stats: LatencyStats): string[] => [
    fmtCount(stats.count),
    formatValue(statOrNone(stats.count, stats.p50), 'ms'),
    formatValue(statOrNone(stats.count, stats.p99), 'ms'),
  ];
  return {
    heading: `Latency by publisher region (${runLabel(report, run)}, ms)`,
    rows: regions.map(({ region, same, cross }) => [region, ...cells(same), ...cells(cross)]),
  };
}

/** Title of the latency-by-place tables, and the line under it saying what they are for. */
export const PLACE_IN_ROOM_TITLE = "Latency by the event's place in its room";
export const PLACE_IN_ROOM_MEANING =
  "A room's first events pay for setting it up (geo-ws: placing its log, starting its readers); later ones show the steady latency.";

/** Columns of the latency-by-place table, after the place. */
export const PLACE_IN_ROOM_COLUMNS = [
  'same n',
  'same p50',
  'same p99',
  'same max',
  'cross n',
  'cross p50',
  'cross p99',
  'cross max',
] as const;

/**
 * A run's latency split by the event's place in its room (1st, 2nd, 3rd-5th, 6th and later
 * publish of the room by send time) as a heading and rows of cells (place, then
 * PLACE_IN_ROOM_COLUMNS), or none when the run has no such split (no deliveries, or a report
 * from before it).
 */
export function placeInRoomTable(report: LabReport, run: ImplRun): { heading: string; rows: string[][] } | undefined {
  const places = run.check.latency.byPlaceInRoom;
  if (!places?.some(({ same, cross }) => same.count + cross.count > 0)) return undefined;
  const cells = (stats: LatencyStats): string[] => [
    fmtCount(stats.count),
    ...[stats.p50, stats.p99, stats.max].map((ms) => formatValue(statOrNone(stats.count, ms), 'ms')),
  ];
  return {
    heading: `${PLACE_IN_ROOM_TITLE} (${runLabel(report, run)}, ms)`,
    rows: places.map(({ place, same, cross }) => [place, ...cells(same), ...cells(cross)]),
  };
}

/** What the reports say of a geo run whose server did not answer `GET /geo/rooms/:room`. */
export const HOMES_NOT_REPORTED = 'homes: not reported by the server';

/**
 * Where a geo run's rooms ended up: a heading, a line of totals (or HOMES_NOT_REPORTED), and
 * rows of cells: home region, rooms homed there, and with `--affinity` how many of those are
 * that region's own rooms. None for the peers, which have no homes.
 */
export function roomHomesTable(
  report: LabReport,
  run: ImplRun,
): { heading: string; summary: string; columns: string[]; rows: string[][] } | undefined {
  if (run.impl !== 'geo') return undefined;
  const heading = `Room homes (${runLabel(report, run)})`;
  if (!run.homes) return { heading, summary: HOMES_NOT_REPORTED, columns: [], rows: [] };
  const roomRegions = report.roomRegions;
  const homes = Object.entries(run.homes);
  const own = (entries: [string, string | null][]): number =>
    entries.filter(([room, home]) => home !== null && roomRegions?.[room] === home).length;
  // Every region of the run, with rooms or not, then any other home the server named.
  const named = homes.map(([, home]) => home).filter((home): home is string => home !== null);
  const rows = [...new Set([...regionsOf(report), ...named.sort()])].map((region) => {
    const homed = homes.filter(([, home]) => home === region);
    return [region, fmtCount(homed.length), ...(roomRegions ? [fmtCount(own(homed))] : [])];
  });
  const unplaced = homes.filter(([, home]) => home === null).length;
  if (unplaced > 0) rows.push(['not placed', fmtCount(unplaced), ...(roomRegions ? [''] : [])]);
  return {
    heading,
    summary: `${roomsText(homes.length)}${roomRegions ? `, ${fmtCount(own(homes))} homed in their room region` : ''}`,
    columns: ['home', 'rooms', ...(roomRegions ? ['in their room region'] : [])],
    rows,
  };
}

/**
 * With `--affinity`: which rooms were regional where, per region the number of rooms and the
 * first `shown` of their names. None for spread rooms.
 */
export function roomRegionsText(report: LabReport, shown = 4): string | undefined {
  if (!report.roomRegions) return undefined;
  const byRegion = new Map<string, string[]>();
  for (const [room, region] of Object.entries(report.roomRegions)) {
    const rooms = byRegion.get(region) ?? [];
    byRegion.set(region, rooms);
    rooms.push(room);
  }
  const parts = [...byRegion].map(
    ([region, rooms]) => `${region} ${roomsText(rooms.length)} (${rooms.slice(0, shown).join(', ')}${rooms.length > shown ? ', …' : ''})`,
  );
  const affinity = report.parameters.affinity;
  return `room regions${typeof affinity === 'number' ? ` (affinity ${affinity})` : ''}: ${parts.join('; ')}`;
}

function roomsText(count: number): string {
  return `${fmtCount(count)} ${count === 1 ? 'room' : 'rooms'}`;
}

/** The run's regions in the order it was given them. */
function regionsOf(report: LabReport): string[] {
  const regions = report.parameters.regions;
  return Array.isArray(regions) ? regions.filter((region): region is string => typeof region === 'string') : [];
}

/** The highest summed server RSS of the once-a-second samples (what a client that stops reading can drive up), or none without samples. */
export function serverRssPeak(server: ServerStats): number | undefined {
  return server.samples.length > 0 ? server.samples.reduce((peak, sample) => Math.max(peak, sample.rssBytes), 0) : undefined;
}

function statOrNone(count: number, value: number): number | undefined {
  return count > 0 ? value : undefined;
}

export function fmtCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A value for a table cell: '–' when there is none. */
export function formatValue(value: number | string | undefined, unit: Unit): string {
  if (value === undefined) return '–';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '–';
  switch (unit) {
    case 'count':
    case 'rate':
      return fmtCount(value);
    case 'ms':
      return value < 10 ? value.toFixed(1) : fmtCount(value);
    case 'cpu':
      return value < 1 ? value.toFixed(3) : value < 100 ? value.toFixed(1) : fmtCount(value);
    case 'bytes':
      return formatBytes(value);
    case 'text':
      return String(value);
  }
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${Math.round(bytes)} B`;
  if (abs < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** Columns of the home-move tables: the publishes per publisher region, and the rooms. */
export const SHIFT_REGION_COLUMNS = ['publisher region', 'before the shift', 'after'] as const;
export const SHIFT_ROOM_COLUMNS = [
  'room',
  'publishers',
  'home at end',
  'term',
  'moves',
  'move p50',
  'move p99',
  'run p50',
  'run p99',
] as const;

/** A run's publisher shift (`home-move`) as the reports show it; see {@link homeMoveTables}. */
export interface HomeMoveTables {
  heading: string;
  /** What "during the move" covers, in words. */
  caption: string;
  /** [figure, value] pairs: rooms moved, terms, anomalies, recovered: false, latency during the move and over the run. */
  figures: [string, string][];
  /** SHIFT_REGION_COLUMNS cells: publishes per publisher region before and after the shift. */
  regions: string[][];
  /** SHIFT_ROOM_COLUMNS cells, one row per room. */
  rooms: string[][];
}

/**
 * The home-move figures of a run whose publishers moved mid-run: how many rooms' logs
 * followed them (term > 1; a room's moves are its term - 1), the anomalies and
 * `recovered: false` rejoins the move must not cause, the latency of the events published
 * during the move beside the whole run's, the publishes per region before and after the
 * shift (it happened), and each room. None for runs without a shift.
 */
export function homeMoveTables(report: LabReport, run: ImplRun): HomeMoveTables | undefined {
  const shift = run.publisherShift;
  if (!shift) return undefined;
  // Rooms the server gave no term for have none.
  const terms: Partial<Record<string, number>> | undefined = run.terms;
  const moved = terms ? shift.rooms.filter(({ room }) => (terms[room] ?? 0) > 1).length : undefined;
  const anomalies = ANOMALY_LABELS.reduce((sum, [key]) => sum + run.check.anomalies[key], 0);
  const at = (s: number): string => `${s.toFixed(1)} s`;
  return {
    heading: `Home move (${runLabel(report, run)}): publishers moved to each room's next region at ${at(shift.atS)}`,
    caption: `"move": events published from ${at(shift.atS)} to ${at(shift.atS + shift.duringS)} (the shift + 2 × the move window); "run": every event. Latency in ms, send to first arrival.`,
    figures: [
      ['rooms moved / total', `${moved === undefined ? '–' : fmtCount(moved)} / ${fmtCount(shift.rooms.length)}`],
      // The peers have no room homes.
      ['terms at the end', run.impl === 'geo' ? termsText(shift.rooms, terms) : '–'],
      ['anomalies (all kinds)', fmtCount(anomalies)],
      ['rejoins told recovered: false', fmtCount(run.check.gaps)],
      ['latency during the move p50 / p99', latencyText(shift.during)],
      ['latency over the run p50 / p99', latencyText(shift.whole)],
    ],
    regions: shift.publishesByRegion.map(({ region, before, after }) => [region, fmtCount(before), fmtCount(after)]),
    rooms: shift.rooms.map(({ room, from, to, during, whole }) => {
      const term = terms?.[room];
      const home = run.homes?.[room];
      return [
        room,
        `${from} → ${to}`,
        home === undefined ? '–' : (home ?? 'not placed'),
        term === undefined ? '–' : fmtCount(term),
        term === undefined ? '–' : fmtCount(Math.max(0, term - 1)),
        ...p50AndP99(during),
        ...p50AndP99(whole),
      ];
    }),
  };
}

/** The takeover figures of a run that killed a region with its brokers. */
export interface TakeoverFigures {
  heading: string;
  caption: string;
  figures: [string, string][];
}

/**
 * What the surviving regions did with the killed region's rooms: how many they took over
 * (term above 1 at the end), how long after the kill each accepted its first append again,
 * and the anomalies, with the `recovered: false` announcements (a takeover starts a new
 * epoch) apart from silent loss. None for runs that killed no brokers.
 */
export function takeoverFigures(report: LabReport, run: ImplRun): TakeoverFigures | undefined {
  const takeovers = run.takeovers;
  if (!takeovers) return undefined;
  const { writableAfter } = takeovers;
  const silent = ANOMALY_LABELS.reduce((sum, [key]) => sum + run.check.anomalies[key], 0);
  const ms = (value: number): string => formatValue(value, 'ms');
  return {
    heading: `Takeover (${runLabel(report, run)}): a region and its brokers killed at ${takeovers.killAtS.toFixed(1)} s`,
    caption:
      'Rooms taken over: their home term went up (GET /geo/rooms/:room at the end). Writable again: from the kill to the first publish acked after it, per room.',
    figures: [
      ['rooms taken over', fmtCount(takeovers.rooms.length)],
      [
        'writable again p50 / p99 / max',
        writableAfter.count === 0 ? '–' : `${ms(writableAfter.p50)} / ${ms(writableAfter.p99)} / ${ms(writableAfter.max)} ms`,
      ],
      ['taken over, never written again', fmtCount(takeovers.neverWritable)],
      ['rejoins told recovered: false', fmtCount(run.check.gaps)],
      ['lost, announced (member × acked event, told recovered: false after it)', fmtCount(run.check.announcedLost ?? 0)],
      ['anomalies (silent: lost, duplicated, reordered, …)', fmtCount(silent)],
    ],
  };
}

function p50AndP99(stats: LatencyStats): string[] {
  return [stats.p50, stats.p99].map((ms) => formatValue(statOrNone(stats.count, ms), 'ms'));
}

/** `1 ×18, 2 ×2`: how many rooms ended at each term, or why there are none. */
function termsText(rooms: { room: string }[], terms: Partial<Record<string, number>> | undefined): string {
  if (!terms) return 'not reported by the server';
  const counts = new Map<number, number>();
  for (const { room } of rooms) {
    const term = terms[room];
    if (term !== undefined) counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  if (counts.size === 0) return 'not reported by the server';
  return [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([term, count]) => `${fmtCount(term)} ×${fmtCount(count)}`)
    .join(', ');
}

/** `85 / 420 ms (1,200 deliveries)`, or '–' without deliveries. */
function latencyText(stats: LatencyStats): string {
  if (stats.count === 0) return '–';
  return `${formatValue(stats.p50, 'ms')} / ${formatValue(stats.p99, 'ms')} ms (${fmtCount(stats.count)} deliveries)`;
}
