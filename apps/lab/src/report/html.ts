import { writeFile } from 'node:fs/promises';

import type { Histogram, LatencyStats, TimelinePoint } from '../check/check.types.js';
import type { FaultEvent, ImplRun, LabReport } from './report.types.js';
import {
  ANOMALY_LABELS,
  baseRun,
  fmtCount,
  formatBytes,
  formatValue,
  ratioText,
  runLabel,
  serverRssPeak,
  summarySections,
  failoverPhaseTable,
  PHASE_COLUMNS,
  PLACE_IN_ROOM_COLUMNS,
  PLACE_IN_ROOM_MEANING,
  PLACE_IN_ROOM_TITLE,
  placeInRoomTable,
  PUBLISHER_REGION_COLUMNS,
  publisherRegionTable,
  roomHomesTable,
  roomRegionsText,
  homeMoveTables,
  takeoverFigures,
  SHIFT_REGION_COLUMNS,
  SHIFT_ROOM_COLUMNS,
} from './summary.js';

/**
 * The HTML report: one self-contained file (inline CSS and SVG drawn here, no script, no
 * network), so it opens offline and can be attached to an issue as is.
 */
export function renderHtml(report: LabReport): string {
  const title = `geo lab · ${report.scenario}`;
  const scale = timelineScale(report);
  const body = [
    `<header><h1>${esc(title)}</h1><p class="sub">started ${esc(report.startedAt)} · ${report.machine.cpus} CPUs · node ${esc(report.machine.node)} · ${esc(report.machine.platform)} · ${report.runs.map((run) => esc(`${run.impl} on ${run.broker}`)).join(', ')}</p></header>`,
    report.notes.length || report.runs.some((run) => run.limitedBy) ? notesHtml(report) : '',
    section('Anomalies', anomaliesHtml(report)),
    section('Summary', summaryHtml(report)),
    report.runs.some((run) => publisherRegionTable(report, run))
      ? section('Latency by publisher region', publisherRegionsHtml(report))
      : '',
    report.runs.some((run) => placeInRoomTable(report, run)) ? section(PLACE_IN_ROOM_TITLE, placeInRoomHtml(report)) : '',
    report.runs.some((run) => failoverPhaseTable(run)) ? section('Failover timeline', failoverPhasesHtml(report)) : '',
    report.runs.some((run) => roomHomesTable(report, run)) ? section('Room homes', roomHomesHtml(report)) : '',
    report.runs.some((run) => homeMoveTables(report, run)) ? section('Home move', homeMoveHtml(report)) : '',
    report.runs.some((run) => takeoverFigures(report, run)) ? section('Takeover', takeoverHtml(report)) : '',
    section(
      'Latency histograms',
      `<p class="hint">Share of deliveries per latency bucket (log-spaced), from send to arrival. Same region: the receiver was connected to the publisher's region.</p><div class="grid">${report.runs
        .map(
          (run) =>
            `<figure><figcaption>${esc(runLabel(report, run))}</figcaption>${histogramSvg(run.check.histograms.same, run.check.histograms.cross, run.check.latency.same, run.check.latency.cross)}</figure>`,
        )
        .join('')}</div>`,
    ),
    section(
      'Timeline',
      `<p class="hint">Deliveries per second and the p50/p99 latency of deliveries arriving in that second; red lines are faults and recoveries; below, clients disconnected at the end of each second. Every impl is drawn on the same scales.</p>${report.runs
        .map(
          (run) =>
            `<figure class="wide"><figcaption>${esc(runLabel(report, run))}</figcaption>${timelineSvg(run.check.timeline, run.faults, scale)}</figure>`,
        )
        .join('')}`,
    ),
    section(
      'Server memory and CPU',
      `<p class="hint">Once a second, summed over the server processes (brokers apart): resident memory (RSS) and the CPU they used in the second before (100% = one core); one line per impl, on the timeline's time scale; red lines are faults and recoveries.</p><figure class="wide">${serverSvg(report, scale.tMax)}</figure>`,
    ),
    report.runs.some((run) => run.check.examples.length) ? section('Anomaly examples', examplesHtml(report)) : '',
    section('Parameters', parametersHtml(report)),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export async function writeHtmlReport(report: LabReport, file: string): Promise<void> {
  await writeFile(file, renderHtml(report));
}

const COLORS = { same: '#2f6fdf', cross: '#e8833a', rate: '#2f6fdf', p99: '#d9480f', p50: '#2b8a3e', fault: '#c92a2a', down: '#7048e8' };
/** One colour per run on charts that overlay the runs (none of them the fault red). */
const RUN_COLORS = ['#2f6fdf', '#e8833a', '#2b8a3e', '#7048e8', '#0c8599', '#a61e4d'];

const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --card: #fff; --bg: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 12px; }
.sub, .hint { color: var(--muted); margin: 0 0 8px; }
section, .notes { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin: 16px 0; }
.notes { background: #fff9db; border-color: #ffe066; }
.notes ul { margin: 0; padding-left: 18px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line); }
tr.group td { font-weight: 600; padding-top: 12px; text-align: left; border-bottom: none; }
td.ratio { color: var(--muted); }
td.meaning { color: var(--muted); text-align: left; white-space: normal; }
td.ok { background: #ebfbee; color: #2b8a3e; font-weight: 600; }
td.bad { background: #fff5f5; color: #c92a2a; font-weight: 700; }
/* auto-fill: a lone histogram keeps its column's width instead of doubling its text. */
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0 0 12px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg { display: block; width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .axis { stroke: #98a2b3; stroke-width: 1; }
svg .grid { stroke: #eef0f3; stroke-width: 1; }
svg text:not([fill]) { fill: #475467; }
ul.examples { margin: 4px 0 12px; padding-left: 18px; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
dl.params { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-word; }
`;

function section(title: string, html: string): string {
  return `<section><h2>${esc(title)}</h2>${html}</section>`;
}

function notesHtml(report: LabReport): string {
  const items = [
    ...report.notes,
    ...report.runs.filter((run) => run.limitedBy).map((run) => `${run.impl}: limited by ${run.limitedBy ?? ''}`),
  ];
  return `<div class="notes"><ul>${items.map((note) => `<li>${esc(note)}</li>`).join('')}</ul></div>`;
}

function anomaliesHtml(report: LabReport): string {
  const head = `<thead><tr><th>anomaly</th>${report.runs.map((run) => `<th>${esc(runLabel(report, run))}</th>`).join('')}</tr></thead>`;
  const rows = ANOMALY_LABELS.map(([key, label]) => {
    const cells = report.runs.map((run) => {
      const n = run.check.anomalies[key];
      return `<td class="${n === 0 ? 'ok' : 'bad'}">${fmtCount(n)}</td>`;
    });
    return `<tr><td>${esc(label)}</td>${cells.join('')}</tr>`;
  });
  return `<table class="anomalies">${head}<tbody>${rows.join('')}</tbody></table>`;
}

function summaryHtml(report: LabReport): string {
  const base = baseRun(report);
  const others = base ? report.runs.filter((run) => run !== base) : [];
  const baseIndex = base ? report.runs.indexOf(base) : -1;
  const head = `<thead><tr><th></th>${report.runs.map((run) => `<th>${esc(runLabel(report, run))}</th>`).join('')}${others
    .map((run) => `<th>${esc(`${runLabel(report, run)}/${base?.impl ?? ''}`)}</th>`)
    .join('')}</tr></thead>`;
  const columns = report.runs.length + others.length;
  const rows: string[] = [];
  // The anomalies have their own table above.
  for (const group of summarySections(report).slice(1)) {
    rows.push(`<tr class="group"><td colspan="${columns + 1}">${esc(group.title)}</td></tr>`);
    for (const row of group.rows) {
      const values = row.values.map((value) => `<td>${esc(formatValue(value, row.unit))}</td>`);
      const ratios = others.map(
        (run) => `<td class="ratio">${row.ratio ? esc(ratioText(row.values[report.runs.indexOf(run)], row.values[baseIndex])) : ''}</td>`,
      );
      rows.push(`<tr><td>${esc(row.label)}</td>${values.join('')}${ratios.join('')}</tr>`);
    }
  }
  return `<table>${head}<tbody>${rows.join('')}</tbody></table>`;
}

/** Per impl with failovers: phase × n, p50, p95, p99, max (ms), and what each phase measures. */
function failoverPhasesHtml(report: LabReport): string {
  const tables = report.runs.map((run) => {
    const table = failoverPhaseTable(run);
    if (!table) return '';
    const head = `<thead><tr><th>phase</th>${PHASE_COLUMNS.map((column) => `<th>${column}</th>`).join('')}<th>from → to</th></tr></thead>`;
    const rows = table.rows.map(
      ([phase, ...rest]) =>
        `<tr><td>${esc(phase)}</td>${rest
          .slice(0, PHASE_COLUMNS.length)
          .map((value) => `<td>${esc(value)}</td>`)
          .join('')}<td class="meaning">${esc(rest[PHASE_COLUMNS.length] ?? '')}</td></tr>`,
    );
    return `<figure><figcaption>${esc(table.heading)}</figcaption><table>${head}<tbody>${rows.join('')}</tbody></table></figure>`;
  });
  return `<p class="hint">Each failover of the SDK clients split at its milestones (a failover: the SDK's state leaves open until geo.joined of every room). Phases are measured on every failover that reached them, so their quantiles do not add up.</p>${tables.join('')}`;
}

/** A plain table of text cells under a header row. */
function cellsTable(columns: readonly string[], rows: string[][]): string {
  const head = `<thead><tr>${columns.map((column) => `<th>${esc(column)}</th>`).join('')}</tr></thead>`;
  return `<table>${head}<tbody>${rows.map((row) => `<tr>${row.map((value) => `<td>${esc(value)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Per impl: same-region and cross-region latency of each publisher region's events. */
function publisherRegionsHtml(report: LabReport): string {
  const tables = report.runs.map((run) => {
    const table = publisherRegionTable(report, run);
    if (!table) return '';
    return `<figure><figcaption>${esc(table.heading)}</figcaption>${cellsTable(['publisher region', ...PUBLISHER_REGION_COLUMNS], table.rows)}</figure>`;
  });
  return `<p class="hint">The latency above split by where the event was published: same region, the receiver was connected to the publisher's region; cross region, to another one. n counts first deliveries.</p>${tables.join('')}`;
}

/** Per impl: same-region and cross-region latency of each room's 1st, 2nd, 3rd-5th and later events. */
function placeInRoomHtml(report: LabReport): string {
  const tables = report.runs.map((run) => {
    const table = placeInRoomTable(report, run);
    if (!table) return '';
    return `<figure><figcaption>${esc(table.heading)}</figcaption>${cellsTable(['place', ...PLACE_IN_ROOM_COLUMNS], table.rows)}</figure>`;
  });
  return `<p class="hint">${esc(PLACE_IN_ROOM_MEANING)} An event's place: the rank of its publish among its room's publishes by send time. n counts first deliveries.</p>${tables.join('')}`;
}

/** Per geo run: how many rooms each region is home to at the end of the run. */
function roomHomesHtml(report: LabReport): string {
  const tables = report.runs.map((run) => {
    const table = roomHomesTable(report, run);
    if (!table) return '';
    return `<figure><figcaption>${esc(table.heading)}</figcaption><p class="hint">${esc(table.summary)}</p>${
      table.rows.length ? cellsTable(table.columns, table.rows) : ''
    }</figure>`;
  });
  return `<p class="hint">Where each room's log lives once the load stopped, as the regions answer <code>GET /geo/rooms/:room</code>.</p>${tables.join('')}`;
}

/** Per run whose publishers moved: the home-move figures, the publishes per region around the shift, every room. */
function homeMoveHtml(report: LabReport): string {
  const tables = report.runs.map((run) => {
    const move = homeMoveTables(report, run);
    if (!move) return '';
    return `<figure><figcaption>${esc(move.heading)}</figcaption><p class="hint">${esc(move.caption)}</p>${cellsTable(['figure', 'value'], move.figures)}${cellsTable(SHIFT_REGION_COLUMNS, move.regions)}${cellsTable(SHIFT_ROOM_COLUMNS, move.rooms)}</figure>`;
  });
  return `<p class="hint">Each room's publishers moved from its room region to the next region mid-run; a room's log follows once the servers see most of its traffic come from there (its term goes up by one per move, as <code>GET /geo/rooms/:room</code> answers at the end).</p>${tables.join('')}`;
}

/** Per run that killed a region with its brokers: the rooms taken over, and when they were writable again. */
function takeoverHtml(report: LabReport): string {
  return report.runs
    .map((run) => {
      const takeover = takeoverFigures(report, run);
      if (!takeover) return '';
      return `<figure><figcaption>${esc(takeover.heading)}</figcaption><p class="hint">${esc(takeover.caption)}</p>${cellsTable(['figure', 'value'], takeover.figures)}</figure>`;
    })
    .join('');
}

function examplesHtml(report: LabReport): string {
  return report.runs
    .filter((run) => run.check.examples.length)
    .map(
      (run) =>
        `<h3>${esc(runLabel(report, run))}</h3><ul class="examples">${run.check.examples.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>`,
    )
    .join('');
}

function parametersHtml(report: LabReport): string {
  const entries = Object.entries(report.parameters).filter(([, value]) => value !== undefined);
  // Every room's region, not only the first few the text reports show.
  const roomRegions = roomRegionsText(report, Infinity);
  return `<dl class="params">${entries
    .map(([key, value]) => `<dt>${esc(key)}</dt><dd>${esc(typeof value === 'string' ? value : JSON.stringify(value))}</dd>`)
    .join('')}${roomRegions ? `<dt>room regions</dt><dd>${esc(roomRegions)}</dd>` : ''}</dl>`;
}

// ---- charts -------------------------------------------------------------------------

/** Grouped bars per bucket: same vs cross region, each as its share of its own deliveries. */
function histogramSvg(same: Histogram, cross: Histogram, sameStats: LatencyStats, crossStats: LatencyStats): string {
  const W = 560;
  const H = 262;
  const m = { l: 44, r: 12, t: 46, b: 40 };
  const total = (h: Histogram): number => h.counts.reduce((a, b) => a + b, 0);
  const sameTotal = total(same);
  const crossTotal = total(cross);
  const n = Math.max(same.counts.length, cross.counts.length);
  const nonEmpty = (i: number): boolean => (same.counts[i] ?? 0) > 0 || (cross.counts[i] ?? 0) > 0;
  let first = 0;
  let last = n - 1;
  while (first < n && !nonEmpty(first)) first++;
  while (last > first && !nonEmpty(last)) last--;
  if (first >= n) return emptySvg(W, H, 'no deliveries');
  // A little context either side of the data.
  first = Math.max(0, first - 1);
  last = Math.min(n - 1, last + 1);
  const share = (h: Histogram, t: number, i: number): number => (t > 0 ? (h.counts[i] ?? 0) / t : 0);
  let top = 0;
  for (let i = first; i <= last; i++) top = Math.max(top, share(same, sameTotal, i), share(cross, crossTotal, i));
  const yMax = niceCeil(top * 100);
  const plotW = W - m.l - m.r;
  const plotH = H - m.t - m.b;
  const slot = plotW / (last - first + 1);
  const y = (pct: number): number => m.t + plotH - (pct / yMax) * plotH;
  const parts: string[] = [];
  for (const tick of ticks(yMax)) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${f(y(tick))}" y2="${f(y(tick))}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(y(tick) + 3.5)}" text-anchor="end">${tick}%</text>`);
  }
  const bar = Math.max(1, slot / 2 - 1);
  for (let i = first; i <= last; i++) {
    const x = m.l + (i - first) * slot;
    const range = bucketRange(same.bounds, i);
    for (const [h, t, color, dx, name] of [
      [same, sameTotal, COLORS.same, 0.5, 'same region'],
      [cross, crossTotal, COLORS.cross, slot / 2, 'cross region'],
    ] as const) {
      const pct = share(h, t, i) * 100;
      if (pct <= 0) continue;
      parts.push(
        `<rect x="${f(x + dx)}" y="${f(y(pct))}" width="${f(bar)}" height="${f(m.t + plotH - y(pct))}" fill="${color}"><title>${esc(`${name} ${range}: ${fmtCount(h.counts[i] ?? 0)} (${pct.toFixed(1)}%)`)}</title></rect>`,
      );
    }
  }
  // Bound labels at bucket edges, thinned to fit.
  const every = Math.max(1, Math.ceil(46 / slot));
  for (let i = first + 1; i <= last; i += every) {
    const x = m.l + (i - first) * slot;
    const bound = same.bounds[i - 1];
    parts.push(`<line class="axis" x1="${f(x)}" x2="${f(x)}" y1="${m.t + plotH}" y2="${m.t + plotH + 4}"/>`);
    parts.push(`<text x="${f(x)}" y="${m.t + plotH + 16}" text-anchor="middle">${esc(msLabel(bound))}</text>`);
  }
  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${m.t + plotH}" y2="${m.t + plotH}"/>`);
  parts.push(`<text x="${m.l + plotW / 2}" y="${H - 6}" text-anchor="middle">latency (send → arrival)</text>`);
  // One legend line per series: each carries its own count and percentiles.
  parts.push(
    legend(m.l, 14, [
      [COLORS.same, `same region: ${fmtCount(sameStats.count)} deliveries, p50 ${msText(sameStats.p50)}, p99 ${msText(sameStats.p99)}`],
    ]),
  );
  parts.push(
    legend(m.l, 30, [
      [
        COLORS.cross,
        `cross region: ${fmtCount(crossStats.count)} deliveries, p50 ${msText(crossStats.p50)}, p99 ${msText(crossStats.p99)}`,
      ],
    ]),
  );
  return svg(W, H, parts);
}

/** Delivery rate (area, left axis), p50/p99 latency (lines, right axis), fault markers; a reconnecting strip below. */
interface TimelineScale {
  tMax: number;
  rateMax: number;
  latMax: number;
  downMax: number;
}

/** One scale for every run's timeline, so the impls compare at a glance. */
function timelineScale(report: LabReport): TimelineScale {
  const points = report.runs.flatMap((run) => run.check.timeline);
  const most = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 1);
  return {
    tMax: most(
      report.runs.flatMap((run) => [
        run.check.timeline.length,
        run.durationMs / 1000,
        ...run.faults.map((fault) => fault.at / 1000 + 1),
        ...run.server.samples.map((sample) => sample.t),
      ]),
    ),
    rateMax: niceCeil(most(points.map((p) => p.delivered))),
    latMax: niceCeil(most(points.map((p) => p.p99))),
    downMax: niceCeil(most(points.map((p) => p.reconnecting))),
  };
}

function timelineSvg(timeline: TimelinePoint[], faults: FaultEvent[], { tMax, rateMax, latMax, downMax }: TimelineScale): string {
  const W = 1120;
  const H = 330;
  const m = { l: 60, r: 62, t: 30, b: 34 };
  const stripH = 60;
  const gap = 26;
  const plotH = H - m.t - m.b - stripH - gap;
  const plotW = W - m.l - m.r;
  if (timeline.length === 0 && faults.length === 0) return emptySvg(W, 120, 'no timeline');
  const x = (t: number): number => m.l + (t / tMax) * plotW;
  const yRate = (v: number): number => m.t + plotH - (v / rateMax) * plotH;
  const yLat = (v: number): number => m.t + plotH - (v / latMax) * plotH;
  const stripTop = m.t + plotH + gap;
  const yDown = (v: number): number => stripTop + stripH - (v / downMax) * stripH;
  const parts: string[] = [];

  for (const tick of ticks(rateMax)) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${f(yRate(tick))}" y2="${f(yRate(tick))}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(yRate(tick) + 3.5)}" text-anchor="end" fill="${COLORS.rate}">${esc(shortCount(tick))}</text>`);
  }
  for (const tick of ticks(latMax)) {
    parts.push(`<text x="${W - m.r + 6}" y="${f(yLat(tick) + 3.5)}" fill="${COLORS.p99}">${esc(msLabel(tick))}</text>`);
  }
  parts.push(
    `<text transform="translate(14 ${m.t + plotH / 2}) rotate(-90)" text-anchor="middle" fill="${COLORS.rate}">deliveries/s</text>`,
  );
  parts.push(
    `<text transform="translate(${W - 10} ${m.t + plotH / 2}) rotate(90)" text-anchor="middle" fill="${COLORS.p99}">latency</text>`,
  );

  // Each point covers [t, t+1): a step shape.
  const steps = (value: (p: TimelinePoint) => number, yOf: (v: number) => number): string =>
    timeline.map((p) => `${f(x(p.t))},${f(yOf(value(p)))} ${f(x(p.t + 1))},${f(yOf(value(p)))}`).join(' ');
  if (timeline.length > 0) {
    const base = f(yRate(0));
    parts.push(
      `<polygon points="${f(x(timeline[0].t))},${base} ${steps((p) => p.delivered, yRate)} ${f(x((timeline.at(-1)?.t ?? 0) + 1))},${base}" fill="${COLORS.rate}" fill-opacity="0.18" stroke="${COLORS.rate}" stroke-width="1.2"/>`,
    );
    // Latency only where something arrived (no arrivals: no latency, not zero latency).
    for (const [key, color, width] of [
      ['p50', COLORS.p50, 1.2],
      ['p99', COLORS.p99, 1.8],
    ] as const) {
      for (const run of runsOf(timeline, (p) => p.delivered > 0)) {
        const points = run.map((p) => `${f(x(p.t))},${f(yLat(p[key]))} ${f(x(p.t + 1))},${f(yLat(p[key]))}`).join(' ');
        parts.push(`<polyline points="${points}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`);
      }
    }
    for (const p of timeline) {
      if (p.reconnecting <= 0) continue;
      parts.push(
        `<rect x="${f(x(p.t))}" y="${f(yDown(p.reconnecting))}" width="${f(Math.max(1, x(p.t + 1) - x(p.t) - 0.5))}" height="${f(stripTop + stripH - yDown(p.reconnecting))}" fill="${COLORS.down}" fill-opacity="0.7"><title>${p.t} s: ${fmtCount(p.reconnecting)} reconnecting</title></rect>`,
      );
    }
  }
  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${m.t + plotH}" y2="${m.t + plotH}"/>`);
  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${stripTop + stripH}" y2="${stripTop + stripH}"/>`);
  parts.push(`<text x="${m.l - 6}" y="${stripTop + 10}" text-anchor="end" fill="${COLORS.down}">${esc(shortCount(downMax))}</text>`);
  parts.push(`<text x="${m.l - 6}" y="${stripTop + stripH}" text-anchor="end" fill="${COLORS.down}">0</text>`);
  parts.push(`<text x="${m.l + 4}" y="${stripTop - 4}" fill="${COLORS.down}">clients reconnecting</text>`);

  for (const tick of ticks(tMax, 10)) {
    parts.push(`<line class="axis" x1="${f(x(tick))}" x2="${f(x(tick))}" y1="${stripTop + stripH}" y2="${stripTop + stripH + 4}"/>`);
    parts.push(`<text x="${f(x(tick))}" y="${stripTop + stripH + 16}" text-anchor="middle">${tick} s</text>`);
  }

  parts.push(...faultMarkers(faults, x, m.t, stripTop + stripH, W - m.r));

  parts.push(
    legend(m.l, 14, [
      [COLORS.rate, 'deliveries/s'],
      [COLORS.p50, 'p50 latency'],
      [COLORS.p99, 'p99 latency'],
      [COLORS.fault, 'fault'],
    ]),
  );
  return svg(W, H, parts);
}

/** Faults: a dashed line from `top` to `bottom`; labels staggered on three rows so neighbours do not overlap. */
function faultMarkers(faults: FaultEvent[], x: (t: number) => number, top: number, bottom: number, right: number): string[] {
  const parts: string[] = [];
  faults.forEach((fault, i) => {
    const fx = x(fault.at / 1000);
    const row = i % 3;
    parts.push(
      `<line x1="${f(fx)}" x2="${f(fx)}" y1="${top - 2}" y2="${bottom}" stroke="${COLORS.fault}" stroke-width="1.2" stroke-dasharray="4 3"><title>${esc(`${(fault.at / 1000).toFixed(1)} s: ${fault.label}`)}</title></line>`,
    );
    const anchor = fx > right - 160 ? 'end' : 'start';
    parts.push(
      `<text x="${f(fx + (anchor === 'end' ? -4 : 4))}" y="${top + 10 + row * 13}" text-anchor="${anchor}" fill="${COLORS.fault}" font-weight="600" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(fault.label)}</text>`,
    );
  });
  return parts;
}

/**
 * Every run's faults once: the runs of one scenario fire the same faults at nearly the same
 * time, and one marker per run would stack their labels.
 */
function sharedFaults(runs: ImplRun[]): FaultEvent[] {
  const shared: FaultEvent[] = [];
  for (const fault of runs.flatMap((run) => run.faults)) {
    if (!shared.some((seen) => seen.label === fault.label && Math.abs(seen.at - fault.at) < 1000)) shared.push(fault);
  }
  return shared.sort((a, b) => a.at - b.at);
}

/**
 * Server RSS (MiB, summed over the server processes; top) and server CPU % (below) from the
 * once-a-second samples: one line per run on shared axes, the faults across both.
 */
function serverSvg(report: LabReport, tMax: number): string {
  const runs = report.runs.filter((run) => run.server.samples.length > 0);
  const W = 1120;
  if (runs.length === 0) return emptySvg(W, 120, 'no server samples');
  const MiB = 1024 * 1024;
  const most = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 1);
  // Axes from zero, topped at the next tick: a doubling shows as one.
  const rssMax = tickCeil(most(runs.flatMap((run) => run.server.samples.map((sample) => sample.rssBytes / MiB))));
  const cpuMax = tickCeil(most(runs.flatMap((run) => run.server.samples.map((sample) => sample.cpuPercent))), 3);
  // A legend line per run (each carries its own figures), then room for the first panel's caption.
  const legendTop = 14;
  const m = { l: 60, r: 62, t: legendTop + runs.length * 16 + 20, b: 34 };
  const rssH = 150;
  const gap = 34;
  const cpuH = 100;
  const H = m.t + rssH + gap + cpuH + m.b;
  const plotW = W - m.l - m.r;
  const cpuTop = m.t + rssH + gap;
  const x = (t: number): number => m.l + (t / tMax) * plotW;
  const yRss = (mib: number): number => m.t + rssH - (mib / rssMax) * rssH;
  const yCpu = (pct: number): number => cpuTop + cpuH - (pct / cpuMax) * cpuH;
  const parts: string[] = [];

  for (const tick of ticks(rssMax)) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${f(yRss(tick))}" y2="${f(yRss(tick))}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(yRss(tick) + 3.5)}" text-anchor="end">${fmtCount(tick)}</text>`);
  }
  for (const tick of ticks(cpuMax, 3)) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${f(yCpu(tick))}" y2="${f(yCpu(tick))}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(yCpu(tick) + 3.5)}" text-anchor="end">${tick}%</text>`);
  }
  parts.push(`<text x="${m.l + 4}" y="${m.t - 6}" font-weight="600">server RSS (MiB)</text>`);
  parts.push(`<text x="${m.l + 4}" y="${cpuTop - 6}" font-weight="600">server CPU (100% = one core)</text>`);

  runs.forEach((run, i) => {
    const color = RUN_COLORS[i % RUN_COLORS.length];
    const label = runLabel(report, run);
    const samples = run.server.samples;
    // RSS is read at the sample's time; CPU is what was used since the sample before (the first since the window opened).
    const rss = samples.map((sample) => `${f(x(sample.t))},${f(yRss(sample.rssBytes / MiB))}`).join(' ');
    const cpu = samples
      .map(
        (sample, k) =>
          `${f(x(k > 0 ? samples[k - 1].t : 0))},${f(yCpu(sample.cpuPercent))} ${f(x(sample.t))},${f(yCpu(sample.cpuPercent))}`,
      )
      .join(' ');
    parts.push(
      `<polyline data-run="${esc(label)}" data-series="rss" points="${rss}" fill="none" stroke="${color}" stroke-width="1.8" stroke-linejoin="round"><title>${esc(`${label}: server RSS`)}</title></polyline>`,
    );
    parts.push(
      `<polyline data-run="${esc(label)}" data-series="cpu" points="${cpu}" fill="none" stroke="${color}" stroke-width="1.4" stroke-linejoin="round"><title>${esc(`${label}: server CPU`)}</title></polyline>`,
    );
    // Hover targets: each sample's figures.
    for (const sample of samples) {
      parts.push(
        `<circle cx="${f(x(sample.t))}" cy="${f(yRss(sample.rssBytes / MiB))}" r="3" fill="${color}" fill-opacity="0"><title>${esc(`${label} at ${sample.t.toFixed(1)} s: RSS ${formatBytes(sample.rssBytes)}, CPU ${Math.round(sample.cpuPercent)}%`)}</title></circle>`,
      );
    }
  });

  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${m.t + rssH}" y2="${m.t + rssH}"/>`);
  parts.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${cpuTop + cpuH}" y2="${cpuTop + cpuH}"/>`);
  for (const tick of ticks(tMax, 10)) {
    parts.push(`<line class="axis" x1="${f(x(tick))}" x2="${f(x(tick))}" y1="${cpuTop + cpuH}" y2="${cpuTop + cpuH + 4}"/>`);
    parts.push(`<text x="${f(x(tick))}" y="${cpuTop + cpuH + 16}" text-anchor="middle">${tick} s</text>`);
  }
  const faults = sharedFaults(runs);
  parts.push(...faultMarkers(faults, x, m.t, cpuTop + cpuH, W - m.r));

  runs.forEach((run, i) => {
    const samples = run.server.samples;
    const cpu = samples.map((sample) => sample.cpuPercent);
    const items: [string, string][] = [
      [
        RUN_COLORS[i % RUN_COLORS.length],
        `${runLabel(report, run)}: RSS ${formatBytes(samples[0].rssBytes)} first, ${formatBytes(serverRssPeak(run.server) ?? 0)} peak, ${formatBytes(samples[samples.length - 1].rssBytes)} last · CPU ${Math.round(cpu.reduce((a, b) => a + b, 0) / cpu.length)}% mean, ${Math.round(cpu.reduce((a, b) => Math.max(a, b), 0))}% max`,
      ],
    ];
    if (i === 0 && faults.length > 0) items.push([COLORS.fault, 'fault']);
    parts.push(legend(m.l, legendTop + i * 16, items));
  });
  return svg(W, H, parts);
}

/** Maximal runs of consecutive points that satisfy `keep`. */
function runsOf(points: TimelinePoint[], keep: (p: TimelinePoint) => boolean): TimelinePoint[][] {
  const runs: TimelinePoint[][] = [];
  let current: TimelinePoint[] = [];
  for (const p of points) {
    if (keep(p)) current.push(p);
    else if (current.length) {
      runs.push(current);
      current = [];
    }
  }
  if (current.length) runs.push(current);
  return runs;
}

function legend(x0: number, y: number, items: [string, string][]): string {
  let x = x0;
  const parts: string[] = [];
  for (const [color, text] of items) {
    parts.push(`<rect x="${f(x)}" y="${y - 9}" width="12" height="10" rx="2" fill="${color}"/>`);
    parts.push(`<text x="${f(x + 16)}" y="${y}">${esc(text)}</text>`);
    // A rough width: system-ui at 11 px is about 6 px per character.
    x += 16 + text.length * 6 + 18;
  }
  return parts.join('');
}

function svg(w: number, h: number, parts: string[]): string {
  return `<svg viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg" role="img">${parts.join('')}</svg>`;
}

function emptySvg(w: number, h: number, text: string): string {
  return svg(w, h, [`<text x="${w / 2}" y="${h / 2}" text-anchor="middle">${esc(text)}</text>`]);
}

function bucketRange(bounds: number[], i: number): string {
  if (i === 0) return `< ${msLabel(bounds[0])}`;
  if (i >= bounds.length) return `≥ ${msLabel(bounds[bounds.length - 1])}`;
  return `${msLabel(bounds[i - 1])}–${msLabel(bounds[i])}`;
}

/** 1, 2 or 5 × 10^k at or above `v`. */
function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

/** The first of `ticks(v, count)`'s steps at or above `v`: a tighter top than `niceCeil`. */
function tickCeil(v: number, count = 4): number {
  const step = niceCeil(v / count);
  return Math.ceil(v / step) * step;
}

/** About `count` round ticks from 0 to max. */
function ticks(max: number, count = 4): number[] {
  const step = niceCeil(max / count);
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9 && out.length <= count * 3; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

function msLabel(ms: number): string {
  if (ms >= 1000) return `${Number((ms / 1000).toPrecision(2))} s`;
  if (ms >= 1) return `${Number(ms.toPrecision(2))} ms`;
  return `${Number(ms.toPrecision(1))} ms`;
}

function msText(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function shortCount(n: number): string {
  if (n >= 1_000_000) return `${Number((n / 1_000_000).toPrecision(3))}M`;
  if (n >= 1000) return `${Number((n / 1000).toPrecision(3))}k`;
  return String(n);
}

function f(n: number): string {
  return Number.isFinite(n) ? n.toFixed(1) : '0';
}

/** Text and attribute values: everything that came from a run (labels, ids, notes) goes through this. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}
