import type { LabReport } from './report.types.js';
import {
  baseRun,
  failoverPhaseTable,
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

/** Pipes and line breaks would break a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table: a header row, its alignment row (the first column left, the others right), the rows. */
function markdownTable(columns: readonly string[], rows: string[][]): string[] {
  return [
    `| ${columns.map(cell).join(' | ')} |`,
    `|${columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

/**
 * The summary as a Markdown table (one column per implementation, then ratios to geo-ws),
 * followed by the latency per publisher region and by the event's place in its room, the
 * failover timelines, the room homes, the faults and notes: what docs/LAB.md quotes.
 */
export function formatMarkdown(report: LabReport): string {
  const base = baseRun(report);
  const others = base ? report.runs.filter((run) => run !== base) : [];
  const baseIndex = base ? report.runs.indexOf(base) : -1;
  const headings = [
    '',
    ...report.runs.map((run) => runLabel(report, run)),
    ...others.map((run) => `${runLabel(report, run)}/${base?.impl ?? ''}`),
  ];
  const out = [`| ${headings.map(cell).join(' | ')} |`, `|${headings.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const section of summarySections(report)) {
    out.push(`| **${cell(section.title)}** |${' |'.repeat(headings.length - 1)}`);
    for (const row of section.rows) {
      const values = row.values.map((value) => formatValue(value, row.unit));
      const ratios = others.map((run) => (row.ratio ? ratioText(row.values[report.runs.indexOf(run)], row.values[baseIndex]) : ''));
      out.push(`| ${[row.label, ...values, ...ratios].map(cell).join(' | ')} |`);
    }
  }
  const roomRegions = roomRegionsText(report);
  if (roomRegions) out.push('', `${roomRegions}.`);
  for (const run of report.runs) {
    const regions = publisherRegionTable(report, run);
    if (regions) out.push('', `${regions.heading}:`, '', ...markdownTable(['publisher region', ...PUBLISHER_REGION_COLUMNS], regions.rows));
  }
  for (const run of report.runs) {
    const places = placeInRoomTable(report, run);
    if (!places) continue;
    out.push('', `${places.heading}:`, '', PLACE_IN_ROOM_MEANING, '', ...markdownTable(['place', ...PLACE_IN_ROOM_COLUMNS], places.rows));
  }
  for (const run of report.runs) {
    const table = failoverPhaseTable(run);
    if (!table) continue;
    out.push(
      '',
      `${table.heading}:`,
      '',
      `| phase | ${PHASE_COLUMNS.join(' | ')} | from → to |`,
      `|---|${PHASE_COLUMNS.map(() => '---:').join('|')}|---|`,
    );
    for (const row of table.rows) out.push(`| ${row.map(cell).join(' | ')} |`);
  }
  for (const run of report.runs) {
    const homes = roomHomesTable(report, run);
    if (!homes) continue;
    out.push('', `${homes.heading}:`, '', `${homes.summary}.`);
    if (homes.rows.length) out.push('', ...markdownTable(homes.columns, homes.rows));
  }
  for (const run of report.runs) {
    const move = homeMoveTables(report, run);
    if (!move) continue;
    out.push(
      '',
      `${move.heading}:`,
      '',
      move.caption,
      '',
      ...markdownTable(['figure', 'value'], move.figures),
      '',
      ...markdownTable(SHIFT_REGION_COLUMNS, move.regions),
      '',
      ...markdownTable(SHIFT_ROOM_COLUMNS, move.rooms),
    );
  }
  for (const run of report.runs) {
    const takeover = takeoverFigures(report, run);
    if (takeover) out.push('', `${takeover.heading}:`, '', takeover.caption, '', ...markdownTable(['figure', 'value'], takeover.figures));
  }
  const faults = report.runs[0]?.faults ?? [];
  if (faults.length > 0) out.push('', `Faults: ${faults.map((fault) => `${(fault.at / 1000).toFixed(1)} s ${fault.label}`).join('; ')}.`);
  for (const note of report.notes) out.push('', `- ${note}`);
  for (const run of report.runs) if (run.limitedBy) out.push(`- ${run.impl}: limited by ${run.limitedBy}`);
  return out.join('\n');
}
