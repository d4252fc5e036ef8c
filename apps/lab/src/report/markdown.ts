import type { LabReport } from './report.types.js';
import { baseRun, failoverPhaseTable, formatValue, PHASE_COLUMNS, ratioText, runLabel, summarySections } from './summary.js';

/** Pipes and line breaks would break a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * The summary as a Markdown table (one column per implementation, then ratios to geo-ws),
 * followed by the faults and notes: what docs/LAB.md quotes.
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
  const faults = report.runs[0]?.faults ?? [];
  if (faults.length > 0) out.push('', `Faults: ${faults.map((fault) => `${(fault.at / 1000).toFixed(1)} s ${fault.label}`).join('; ')}.`);
  for (const note of report.notes) out.push('', `- ${note}`);
  for (const run of report.runs) if (run.limitedBy) out.push(`- ${run.impl}: limited by ${run.limitedBy}`);
  return out.join('\n');
}
