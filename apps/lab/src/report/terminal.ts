import type { LabReport } from './report.types.js';
import {
  baseRun,
  failoverPhaseTable,
  fmtCount,
  formatValue,
  homeMoveTables,
  takeoverFigures,
  PHASE_COLUMNS,
  PLACE_IN_ROOM_COLUMNS,
  PLACE_IN_ROOM_MEANING,
  placeInRoomTable,
  PUBLISHER_REGION_COLUMNS,
  publisherRegionTable,
  ratioText,
  roomHomesTable,
  roomRegionsText,
  runLabel,
  SHIFT_REGION_COLUMNS,
  SHIFT_ROOM_COLUMNS,
  summarySections,
} from './summary.js';

const LABEL_WIDTH = 34;
const MIN_COLUMN = 12;
const LINE_WIDTH = 110;
/** Examples printed per run: the JSON and HTML reports have them all. */
const EXAMPLES_SHOWN = 8;
/** Rooms of the home-move table printed per run: the JSON, Markdown and HTML reports have them all. */
const ROOMS_SHOWN = 24;
/** The narrowest figure column of a table after the summary. */
const FIGURE_COLUMN = 11;

/**
 * The end-of-run summary: one column per implementation, then `<impl>/geo` ratio columns
 * when several ran, then notes, limits and a few anomaly examples. Plain text.
 */
export function formatSummary(report: LabReport): string {
  const out: string[] = [];
  out.push(
    `geo lab · ${report.scenario} · started ${report.startedAt} · ${report.machine.cpus} CPUs, node ${report.machine.node}, ${report.machine.platform}`,
  );
  out.push(...wrap(`parameters: ${formatParameters(report.parameters)}`, LINE_WIDTH, '  '));
  const roomRegions = roomRegionsText(report);
  if (roomRegions) out.push(...wrap(roomRegions, LINE_WIDTH, '  '));
  if (report.runs.length === 0) {
    out.push('', 'No run completed.');
    return [...out, ...notes(report)].join('\n');
  }

  const base = baseRun(report);
  const others = base ? report.runs.filter((run) => run !== base) : [];
  const baseIndex = base ? report.runs.indexOf(base) : -1;
  const headings = [
    ...report.runs.map((run) => runLabel(report, run)),
    ...others.map((run) => `${runLabel(report, run)}/${base?.impl ?? ''}`),
  ];
  const sections = summarySections(report);
  const cells = sections.map((section) =>
    section.rows.map((row) => {
      const values = row.values.map((value) => formatValue(value, row.unit));
      const ratios = others.map((run) => (row.ratio ? ratioText(row.values[report.runs.indexOf(run)], row.values[baseIndex]) : ''));
      return [row.label, ...values, ...ratios];
    }),
  );
  const widths = headings.map((heading, c) =>
    Math.max(MIN_COLUMN, heading.length + 2, ...cells.flat().map((line) => (line[c + 1] ?? '').length + 2)),
  );
  const line = (label: string, values: string[]): string =>
    (label.padEnd(LABEL_WIDTH) + values.map((value, c) => value.padStart(widths[c])).join('')).trimEnd();

  out.push('', line('', headings));
  sections.forEach((section, s) => {
    out.push(section.title);
    for (const [label, ...values] of cells[s]) out.push(line(`  ${label}`, values));
  });
  for (const run of report.runs) out.push(...publisherRegionLines(report, run));
  for (const run of report.runs) out.push(...placeInRoomLines(report, run));
  for (const run of report.runs) out.push(...phaseLines(run));
  for (const run of report.runs) out.push(...homeLines(report, run));
  for (const run of report.runs) out.push(...homeMoveLines(report, run));
  for (const run of report.runs) out.push(...takeoverLines(report, run));
  out.push(...notes(report));
  return out.join('\n');
}

/** The failover timeline: phase × n, p50, p95, p99, max (ms), with what each phase measures. */
function phaseLines(run: LabReport['runs'][number]): string[] {
  const table = failoverPhaseTable(run);
  if (!table) return [];
  const width = Math.max(...table.rows.map((row) => row[0].length)) + 4;
  const row = (cells: readonly string[]): string =>
    `  ${cells[0].padEnd(width)}${cells
      .slice(1, 1 + PHASE_COLUMNS.length)
      .map((cell) => cell.padStart(9))
      .join('')}${cells[1 + PHASE_COLUMNS.length] ? `   ${cells[1 + PHASE_COLUMNS.length]}` : ''}`;
  return ['', table.heading, row(['phase', ...PHASE_COLUMNS, 'from → to']), ...table.rows.map(row)];
}

/** Same-region and cross-region latency of each publisher region's events. */
function publisherRegionLines(report: LabReport, run: LabReport['runs'][number]): string[] {
  const table = publisherRegionTable(report, run);
  return table ? latencyTableLines(table, ['publisher region', ...PUBLISHER_REGION_COLUMNS]) : [];
}

/** Same-region and cross-region latency of each room's 1st, 2nd, 3rd-5th and later events. */
function placeInRoomLines(report: LabReport, run: LabReport['runs'][number]): string[] {
  const table = placeInRoomTable(report, run);
  return table ? latencyTableLines(table, ['place', ...PLACE_IN_ROOM_COLUMNS], PLACE_IN_ROOM_MEANING) : [];
}

/** A latency table: a label column wide enough for its rows, then figures right-aligned. */
function latencyTableLines(table: { heading: string; rows: string[][] }, header: readonly string[], caption?: string): string[] {
  return ['', table.heading, ...(caption ? [`  ${caption}`] : []), ...alignedRows([header, ...table.rows])];
}

/** Rows of cells, indented: the first column left-aligned, the others right-aligned, each as wide as its cells need. */
function alignedRows(rows: readonly (readonly string[])[]): string[] {
  const first = Math.max(...rows.map((row) => row[0].length)) + 4;
  const widths = rows[0].slice(1).map((_, c) => Math.max(FIGURE_COLUMN, ...rows.map((row) => (row[c + 1] ?? '').length + 2)));
  return rows.map(
    (cells) =>
      `  ${cells[0].padEnd(first)}${cells
        .slice(1)
        .map((cell, c) => cell.padStart(widths[c]))
        .join('')}`,
  );
}

/** A run that killed a region with its brokers: the rooms taken over and when they were writable again. */
function takeoverLines(report: LabReport, run: LabReport['runs'][number]): string[] {
  const takeover = takeoverFigures(report, run);
  return takeover ? figureLines(takeover) : [];
}

/** A heading, its caption wrapped, then `label   value` lines aligned. */
function figureLines({ heading, caption, figures }: { heading: string; caption: string; figures: [string, string][] }): string[] {
  const width = Math.max(...figures.map(([label]) => label.length)) + 4;
  return [
    '',
    heading,
    ...wrap(caption, LINE_WIDTH - 2, '').map((line) => `  ${line}`),
    ...figures.map(([label, value]) => `  ${label.padEnd(width)}${value}`),
  ];
}

/** A run whose publishers moved mid-run: its home-move figures, the publishes per region around the shift, and its rooms. */
function homeMoveLines(report: LabReport, run: LabReport['runs'][number]): string[] {
  const tables = homeMoveTables(report, run);
  if (!tables) return [];
  const rooms = tables.rooms.slice(0, ROOMS_SHOWN);
  const more = tables.rooms.length - rooms.length;
  return [
    ...figureLines(tables),
    '',
    ...alignedRows([SHIFT_REGION_COLUMNS, ...tables.regions]),
    '',
    ...alignedRows([SHIFT_ROOM_COLUMNS, ...rooms]),
    ...(more > 0 ? [`  … ${more} more rooms in the JSON, Markdown and HTML reports`] : []),
  ];
}

/** geo: how many rooms each region is home to at the end of the run. */
function homeLines(report: LabReport, run: LabReport['runs'][number]): string[] {
  const table = roomHomesTable(report, run);
  if (!table) return [];
  const lines = ['', table.heading, `  ${table.summary}`];
  if (table.rows.length === 0) return lines;
  const width = Math.max(...table.rows.map((row) => row[0].length), table.columns[0].length) + 4;
  const row = (cells: readonly string[]): string =>
    `  ${cells[0].padEnd(width)}${cells
      .slice(1)
      .map((cell, c) => cell.padStart(table.columns[c + 1].length + 4))
      .join('')}`.trimEnd();
  return [...lines, row(table.columns), ...table.rows.map(row)];
}

function notes(report: LabReport): string[] {
  const out: string[] = [];
  const limits = report.runs.filter((run) => run.limitedBy).map((run) => `${run.impl}: limited by ${run.limitedBy ?? ''}`);
  if (report.notes.length + limits.length > 0) {
    out.push('', 'Notes');
    for (const note of [...report.notes, ...limits]) out.push(...wrap(`- ${note}`, LINE_WIDTH, '  '));
  }
  for (const run of report.runs) {
    if (run.faults.length > 0) {
      out.push('', `Faults (${run.impl})`);
      for (const fault of run.faults) out.push(`  ${(fault.at / 1000).toFixed(1).padStart(7)} s  ${fault.label}`);
    }
    if (run.check.examples.length > 0) {
      out.push('', `Examples (${run.impl})`);
      for (const example of run.check.examples.slice(0, EXAMPLES_SHOWN)) out.push(`  ${example}`);
      if (run.check.examples.length > EXAMPLES_SHOWN) out.push(`  … ${run.check.examples.length - EXAMPLES_SHOWN} more in the JSON report`);
    }
  }
  return out;
}

/** `key=value` pairs; arrays joined with commas, objects as JSON. */
export function formatParameters(parameters: Record<string, unknown>): string {
  return Object.entries(parameters)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${parameterText(value)}`)
    .join(' ');
}

function parameterText(value: unknown): string {
  if (Array.isArray(value)) return value.map(parameterText).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value.toString();
  // JSON.stringify would give undefined for these.
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return '';
  return JSON.stringify(value);
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    if (current && current.length + word.length + 1 > width) {
      lines.push(current);
      current = indent + word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines;
}

/** What the live status shows. */
export interface ProgressStatus {
  impl?: string;
  phase?: string;
  elapsedMs: number;
  connected: number;
  reconnecting: number;
  published: number;
  acked: number;
  delivered: number;
  deliveredPerSec: number;
  errors?: number;
}

/** One line of live status, meant to be rewritten in place with `\r` (no newline, no colors). */
export function progressLine(status: ProgressStatus): string {
  const head = [status.impl && `[${status.impl}]`, status.phase].filter(Boolean).join(' ');
  const parts = [
    `${(status.elapsedMs / 1000).toFixed(0)} s`,
    `connected ${fmtCount(status.connected)}`,
    `reconnecting ${fmtCount(status.reconnecting)}`,
    `published ${fmtCount(status.published)}`,
    `acked ${fmtCount(status.acked)}`,
    `delivered ${fmtCount(status.delivered)} (${fmtCount(status.deliveredPerSec)}/s)`,
  ];
  if (status.errors) parts.push(`errors ${fmtCount(status.errors)}`);
  return `${head ? `${head} ` : ''}${parts.join(' · ')}`;
}
