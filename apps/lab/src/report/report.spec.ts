import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import type { CheckResult } from '../check/check.types.js';
import type { FailoverPhases } from '../check/failover-phases.js';
import type { PublisherShiftCheck } from '../check/publisher-shift.js';
import { LATENCY_BOUNDS_MS } from '../check/checker.js';
import type { Impl } from '../load/load.types.js';
import { esc, renderHtml, writeHtmlReport } from './html.js';
import { writeJsonReport } from './json.js';
import type { ImplRun, LabReport, ServerStats } from './report.types.js';
import { ratioText } from './summary.js';
import { formatMarkdown } from './markdown.js';
import { formatSummary, progressLine } from './terminal.js';

function result(over: { lost?: number; duplicated?: number; sameP99: number; crossP99: number }): CheckResult {
  const counts = LATENCY_BOUNDS_MS.map(() => 0).concat(0);
  counts[10] = 900;
  counts[20] = 100;
  return {
    anomalies: {
      lost: over.lost ?? 0,
      duplicated: over.duplicated ?? 0,
      divergentMembers: 0,
      orderViolations: 0,
      seqGaps: 0,
      appliedTwice: 0,
      ackedMissing: 0,
    },
    publishes: { total: 100, acked: 100, failed: 0, unacked: 0, duplicateAcks: 0 },
    deliveries: 2000,
    latency: {
      all: { count: 2000, p50: 20, p95: 80, p99: over.crossP99, max: 400 },
      same: { count: 1000, p50: 4, p95: 9, p99: over.sameP99, max: 40 },
      cross: { count: 1000, p50: 80, p95: 95, p99: over.crossP99, max: 400 },
      byPublisherRegion: [
        {
          region: 'asia',
          same: { count: 600, p50: 3, p95: 8, p99: 9, max: 30 },
          cross: { count: 1000, p50: 85, p95: 96, p99: 120, max: 400 },
        },
        {
          region: 'eu',
          same: { count: 400, p50: 5, p95: 9, p99: over.sameP99, max: 40 },
          cross: { count: 0, p50: 0, p95: 0, p99: 0, max: 0 },
        },
      ],
      byPlaceInRoom: [
        {
          place: '1st',
          same: { count: 100, p50: 300, p95: 420, p99: 450, max: 600 },
          cross: { count: 200, p50: 400, p95: 480, p99: 500, max: 800 },
        },
        { place: '2nd', same: { count: 100, p50: 120, p95: 200, p99: 250, max: 300 }, cross: { count: 0, p50: 0, p95: 0, p99: 0, max: 0 } },
        {
          place: '3rd-5th',
          same: { count: 300, p50: 5, p95: 9, p99: 9.5, max: 20 },
          cross: { count: 600, p50: 80, p95: 90, p99: 95, max: 110 },
        },
        {
          place: '6th and later',
          same: { count: 500, p50: 4, p95: 8, p99: 9, max: 40 },
          cross: { count: 200, p50: 78, p95: 88, p99: 92, max: 100 },
        },
      ],
    },
    histograms: { same: { bounds: [...LATENCY_BOUNDS_MS], counts }, cross: { bounds: [...LATENCY_BOUNDS_MS], counts: [...counts] } },
    failover: { count: 10, p50: 800, p99: 1500, max: 1600 },
    gaps: 0,
    errors: {},
    timeline: Array.from({ length: 20 }, (_, t) => ({
      t,
      delivered: 100,
      p50: 20,
      p99: t === 10 ? 900 : 90,
      reconnecting: t === 10 ? 10 : 0,
    })),
    examples: over.lost ? ['lost: client c3 room-1: acked number 17 never delivered <b>'] : [],
  };
}

const MiB = 1024 * 1024;

/** Server samples a second apart: RSS in MiB, CPU in percent. */
function samples(rssMiB: number[], cpuPercent: number[]): ServerStats['samples'] {
  return rssMiB.map((rss, i) => ({ t: i + 1, rssBytes: rss * MiB, cpuPercent: cpuPercent[i] }));
}

function run(impl: Impl, check: CheckResult, throughput: number, serverSamples: ServerStats['samples'] = []): ImplRun {
  return {
    impl,
    broker: impl === 'geo' ? 'nats' : 'redis',
    check,
    server: {
      cpuSeconds: 3,
      brokerCpuSeconds: 1,
      rssBaselineBytes: 100e6,
      rssLoadedBytes: 150e6,
      bytesPerConnection: 5000,
      samples: serverSamples,
    },
    connect: { clients: 300, failed: 0, totalMs: 1500, p50: 10, p99: 40 },
    throughput,
    cpuPer1kDeliveries: 1.5,
    faults: [
      { at: 10_000, label: 'SIGKILL us <region-down> & co' },
      { at: 15_000, label: 'us back' },
    ],
    durationMs: 20_000,
  };
}

const sample: LabReport = {
  scenario: 'region-down',
  startedAt: '2025-01-01T00:00:00.000Z',
  machine: { cpus: 2, node: 'v20.20.2', platform: 'linux x64' },
  parameters: { clients: 300, regions: ['asia', 'eu', 'us'], impls: ['geo', 'socketio'], loss: 0 },
  notes: ['Packet loss was NOT simulated (no namespaces) <note>'],
  runs: [
    // RSS peaks mid-run (180 and 260 MiB), not at the first or last sample.
    run('geo', result({ sameP99: 10, crossP99: 100 }), 100, samples([100, 120, 180, 140], [50, 150, 90, 30])),
    run('socketio', result({ lost: 3, duplicated: 2, sameP99: 13, crossP99: 130 }), 90, samples([200, 260, 250, 240], [80, 120, 110, 60])),
  ],
};

describe('formatSummary', () => {
  const text = formatSummary(sample);

  it('puts the impls side by side with a ratio column against geo', () => {
    const header = text.split('\n').find((line) => line.includes('socketio/geo'));
    expect(header).toMatch(/geo\s+socketio\s+socketio\/geo/);
    // Cross-region p99: 100 vs 130 ms.
    const section = text.slice(text.indexOf('Latency, cross region'));
    expect(section).toMatch(/p99\s+100\s+130\s+1\.3x/);
    expect(text).toMatch(/throughput \(deliveries\/s\)\s+100\s+90\s+0\.90x/);
  });

  it('has every anomaly row, with the counts per impl', () => {
    expect(text).toMatch(/lost \(member × acked event\)\s+0\s+3/);
    expect(text).toMatch(/duplicated deliveries\s+0\s+2/);
    for (const label of ['divergent members', 'order violations', 'seq gaps', 'applied twice', 'acked, reached no member'])
      expect(text).toContain(label);
  });

  it('ends with the notes, faults and examples', () => {
    expect(text).toContain('Packet loss was NOT simulated');
    expect(text).toContain('10.0 s  SIGKILL us <region-down> & co');
    expect(text).toContain('lost: client c3 room-1: acked number 17 never delivered');
  });

  it('puts the peak of the server RSS samples beside the RSS loaded, with the ratio', () => {
    expect(text).toMatch(/server RSS loaded\s+143\.1 MiB\s+143\.1 MiB\s+1\.0x/);
    // 260 / 180 MiB.
    expect(text).toMatch(/server RSS peak\s+180\.0 MiB\s+260\.0 MiB\s+1\.4x/);
    const noSamples = run('geo', result({ sameP99: 10, crossP99: 100 }), 100);
    expect(formatSummary({ ...sample, runs: [noSamples] })).toMatch(/server RSS peak\s+–/);
  });

  it('has no ratio column for a single impl', () => {
    expect(formatSummary({ ...sample, runs: [sample.runs[0]] })).not.toContain('/geo');
  });
});

describe('formatMarkdown', () => {
  it('is one Markdown table with a column per impl, ratio columns, and the anomaly rows', () => {
    const markdown = formatMarkdown(sample);
    // The summary table: everything before the first blank line (the other tables follow it).
    const rows = markdown
      .split('\n\n')[0]
      .split('\n')
      .filter((line) => line.startsWith('|'));
    const pipes = (line: string) => line.replace(/\\\|/g, '').split('|').length;
    expect(new Set(rows.map(pipes))).toEqual(new Set([pipes(rows[0])]));
    expect(rows[0]).toBe('|  | geo | socketio | socketio/geo |');
    expect(markdown).toMatch(/\| lost \(member × acked event\) \| 0 \| 3 \|/);
    expect(markdown).toContain('| server RSS peak | 180.0 MiB | 260.0 MiB | 1.4x |');
  });
});

describe('the failover timeline', () => {
  const phases: FailoverPhases = {
    failovers: 100,
    completed: 99,
    attempts: { p50: 1, max: 3 },
    phases: [
      { phase: 'detect', meaning: 'last fault step → SDK state leaves open', count: 100, p50: 2.5, p95: 30_100, p99: 31_000, max: 44_000 },
      { phase: 'rejoin', meaning: 'state open → geo.joined of every room', count: 0, p50: 0, p95: 0, p99: 0, max: 0 },
    ],
  };
  const report: LabReport = { ...sample, runs: [{ ...sample.runs[0], failoverPhases: phases }, sample.runs[1]] };

  it('is a phase × n/p50/p95/p99/max table in the terminal, after the summary, for the runs that have one', () => {
    const text = formatSummary(report);
    expect(text).toContain('Failover timeline (geo, ms): 100 failovers, 99 back in every room, attempts p50 1 / max 3');
    expect(text).toMatch(/phase\s+n\s+p50\s+p95\s+p99\s+max\s+from → to/);
    expect(text).toMatch(/detect\s+100\s+2\.5\s+30,100\s+31,000\s+44,000\s+last fault step → SDK state leaves open/);
    expect(text).toMatch(/rejoin\s+0\s+–\s+–\s+–\s+–/);
    expect(text.indexOf('Failover timeline')).toBeGreaterThan(text.indexOf('Server cost'));
    expect(formatSummary(sample)).not.toContain('Failover timeline');
  });

  it('is a Markdown table of its own', () => {
    const markdown = formatMarkdown(report);
    expect(markdown).toContain('| phase | n | p50 | p95 | p99 | max | from → to |');
    expect(markdown).toContain('| detect | 100 | 2.5 | 30,100 | 31,000 | 44,000 | last fault step → SDK state leaves open |');
  });

  it('is a section of the HTML report', () => {
    const html = renderHtml(report);
    expect(html).toContain('<h2>Failover timeline</h2>');
    expect(html).toContain('<td>detect</td><td>100</td><td>2.5</td><td>30,100</td><td>31,000</td><td>44,000</td>');
    expect(renderHtml(sample)).not.toContain('Failover timeline');
  });
});

describe('latency by publisher region', () => {
  it('is a publisher region × same/cross p50/p99 table per impl in the terminal, after the summary', () => {
    const text = formatSummary(sample);
    expect(text).toContain('Latency by publisher region (geo, ms)');
    expect(text).toContain('Latency by publisher region (socketio, ms)');
    expect(text).toMatch(/publisher region\s+same n\s+same p50\s+same p99\s+cross n\s+cross p50\s+cross p99/);
    expect(text).toMatch(/asia\s+600\s+3\.0\s+9\.0\s+1,000\s+85\s+120/);
    // No cross-region delivery of eu's events: no figures, not zeros.
    expect(text).toMatch(/eu\s+400\s+5\.0\s+10\s+0\s+–\s+–/);
    expect(text.indexOf('Latency by publisher region')).toBeGreaterThan(text.indexOf('Server cost'));
  });

  it('is a Markdown table and an HTML section', () => {
    const markdown = formatMarkdown(sample);
    expect(markdown).toContain('Latency by publisher region (geo, ms):');
    expect(markdown).toContain('| publisher region | same n | same p50 | same p99 | cross n | cross p50 | cross p99 |');
    expect(markdown).toContain('| asia | 600 | 3.0 | 9.0 | 1,000 | 85 | 120 |');
    const html = renderHtml(sample);
    expect(html).toContain('<h2>Latency by publisher region</h2>');
    expect(html).toContain('<td>eu</td><td>400</td><td>5.0</td><td>13</td><td>0</td><td>–</td><td>–</td>');
  });

  it('is left out for reports written before it', () => {
    const latency = { ...sample.runs[0].check.latency, byPublisherRegion: undefined };
    const old: LabReport = { ...sample, runs: [{ ...sample.runs[0], check: { ...sample.runs[0].check, latency } }] };
    expect(formatSummary(old)).not.toContain('by publisher region');
    expect(formatMarkdown(old)).not.toContain('by publisher region');
    expect(renderHtml(old)).not.toContain('by publisher region');
  });
});

describe("latency by the event's place in its room", () => {
  const meaning =
    "A room's first events pay for setting it up (geo-ws: placing its log, starting its readers); later ones show the steady latency.";

  it('is a place × same/cross n/p50/p99/max table per impl in the terminal, its purpose on the line under the title', () => {
    const text = formatSummary(sample);
    expect(text).toContain(`Latency by the event's place in its room (geo, ms)\n  ${meaning}\n`);
    expect(text).toContain("Latency by the event's place in its room (socketio, ms)");
    expect(text).toMatch(/place\s+same n\s+same p50\s+same p99\s+same max\s+cross n\s+cross p50\s+cross p99\s+cross max/);
    expect(text).toMatch(/1st\s+100\s+300\s+450\s+600\s+200\s+400\s+500\s+800\n/);
    // No cross-region delivery of a room's second event: no figures, not zeros.
    expect(text).toMatch(/2nd\s+100\s+120\s+250\s+300\s+0\s+–\s+–\s+–\n/);
    expect(text).toMatch(/3rd-5th\s+300\s+5\.0\s+9\.5\s+20\s+600\s+80\s+95\s+110\n/);
    expect(text).toMatch(/6th and later\s+500\s+4\.0\s+9\.0\s+40\s+200\s+78\s+92\s+100\n/);
    // After the publisher regions, before the failover timeline and the room homes.
    expect(text.indexOf('place in its room')).toBeGreaterThan(text.indexOf('Latency by publisher region (socketio'));
    expect(text.indexOf('place in its room')).toBeLessThan(text.indexOf('Room homes'));
  });

  it('is a Markdown table and an HTML section', () => {
    const markdown = formatMarkdown(sample);
    expect(markdown).toContain(
      `Latency by the event's place in its room (geo, ms):\n\n${meaning}\n\n` +
        '| place | same n | same p50 | same p99 | same max | cross n | cross p50 | cross p99 | cross max |\n' +
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
        '| 1st | 100 | 300 | 450 | 600 | 200 | 400 | 500 | 800 |\n' +
        '| 2nd | 100 | 120 | 250 | 300 | 0 | – | – | – |',
    );
    const html = renderHtml(sample);
    const section = html.slice(html.indexOf('<h2>Latency by the event&#39;s place in its room</h2>'));
    expect(section).toContain(`<p class="hint">${esc(meaning)}`);
    expect(section).toContain('<figcaption>Latency by the event&#39;s place in its room (geo, ms)</figcaption>');
    expect(section).toContain(
      '<td>3rd-5th</td><td>300</td><td>5.0</td><td>9.5</td><td>20</td><td>600</td><td>80</td><td>95</td><td>110</td>',
    );
  });

  it('is left out for reports written before it, and for runs with no deliveries', () => {
    const without = (byPlaceInRoom: CheckResult['latency']['byPlaceInRoom']): LabReport => ({
      ...sample,
      runs: sample.runs.map((r) => ({ ...r, check: { ...r.check, latency: { ...r.check.latency, byPlaceInRoom } } })),
    });
    const none = { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    for (const report of [
      without(undefined),
      without((['1st', '2nd', '3rd-5th', '6th and later'] as const).map((place) => ({ place, same: none, cross: none }))),
    ]) {
      expect(formatSummary(report)).not.toContain('place in its room');
      expect(formatMarkdown(report)).not.toContain('place in its room');
      expect(renderHtml(report)).not.toContain('place in its room');
      // The rest still renders.
      expect(formatSummary(report)).toContain('Latency by publisher region (geo, ms)');
    }
  });
});

describe('room homes', () => {
  const homes = { 'room-0': 'asia', 'room-1': 'eu', 'room-2': 'eu', 'room-3': 'asia', 'room-4': null };
  const roomRegions = { 'room-0': 'asia', 'room-1': 'eu', 'room-2': 'us', 'room-3': 'asia', 'room-4': 'eu' };
  const spread: LabReport = { ...sample, runs: [{ ...sample.runs[0], homes }, sample.runs[1]] };
  const regional: LabReport = { ...spread, parameters: { ...sample.parameters, affinity: 0.8 }, roomRegions };

  it('counts rooms per home region in the terminal, every region listed; nothing for the peers', () => {
    const text = formatSummary(spread);
    expect(text).toContain('Room homes (geo)\n  5 rooms\n');
    expect(text).toMatch(/home\s+rooms\n\s+asia\s+2\n\s+eu\s+2\n\s+us\s+0\n\s+not placed\s+1/);
    expect(text).not.toContain('Room homes (socketio)');
    expect(text).not.toContain('room regions');
  });

  it('with --affinity: the room regions, and how many rooms are homed in theirs', () => {
    const text = formatSummary(regional);
    expect(text).toContain('room regions (affinity 0.8): asia 2 rooms (room-0, room-3); eu 2 rooms (room-1, room-4); us 1 room (room-2)');
    expect(text).toContain('5 rooms, 3 homed in their room region');
    expect(text).toMatch(/home\s+rooms\s+in their room region\n\s+asia\s+2\s+2\n\s+eu\s+2\s+1\n\s+us\s+0\s+0\n\s+not placed\s+1\n/);
    const markdown = formatMarkdown(regional);
    expect(markdown).toContain(
      'room regions (affinity 0.8): asia 2 rooms (room-0, room-3); eu 2 rooms (room-1, room-4); us 1 room (room-2).',
    );
    expect(markdown).toContain('Room homes (geo):\n\n5 rooms, 3 homed in their room region.');
    expect(markdown).toContain('| home | rooms | in their room region |\n|---|---:|---:|\n| asia | 2 | 2 |\n| eu | 2 | 1 |');
    const html = renderHtml(regional);
    expect(html).toContain('<h2>Room homes</h2>');
    expect(html).toContain('<td>eu</td><td>2</td><td>1</td>');
    expect(html).toContain('<dt>room regions</dt>');
  });

  it('says so when the server did not report them, and shows nothing for runs without geo', () => {
    expect(formatSummary(sample)).toContain('Room homes (geo)\n  homes: not reported by the server');
    expect(formatMarkdown(sample)).toContain('homes: not reported by the server.');
    expect(renderHtml(sample)).toContain('homes: not reported by the server');
    const peers: LabReport = { ...sample, runs: [sample.runs[1]] };
    expect(formatSummary(peers)).not.toContain('homes');
    expect(formatMarkdown(peers)).not.toContain('homes');
    expect(renderHtml(peers)).not.toContain('Room homes');
  });
});

describe('home move', () => {
  const stats = (count: number, p50: number, p99: number) => ({ count, p50, p95: p99, p99, max: p99 });
  const publisherShift: PublisherShiftCheck = {
    atS: 8,
    duringS: 10,
    during: stats(400, 90, 850),
    whole: stats(2000, 60, 900),
    rooms: [
      { room: 'room-0', from: 'asia', to: 'eu', during: stats(200, 80, 800), whole: stats(1000, 50, 810) },
      { room: 'room-1', from: 'eu', to: 'us', during: stats(200, 95, 850), whole: stats(1000, 70, 900) },
      { room: 'room-2', from: 'us', to: 'asia', during: stats(0, 0, 0), whole: stats(0, 0, 0) },
    ],
    publishesByRegion: [
      { region: 'asia', before: 16, after: 44 },
      { region: 'eu', before: 16, after: 44 },
      { region: 'us', before: 15, after: 45 },
    ],
  };
  const geo = sample.runs[0];
  const moved: ImplRun = {
    ...geo,
    check: { ...geo.check, gaps: 2 },
    homes: { 'room-0': 'eu', 'room-1': 'eu', 'room-2': null },
    terms: { 'room-0': 2, 'room-1': 1, 'room-2': 0 },
    publisherShift,
  };
  const report: LabReport = { ...sample, scenario: 'home-move', runs: [moved, { ...sample.runs[1], publisherShift }] };

  it('is a small table per run in the terminal: rooms moved, terms, anomalies, recovered: false, latency during the move', () => {
    const text = formatSummary(report);
    expect(text).toContain("Home move (geo): publishers moved to each room's next region at 8.0 s\n");
    expect(text).toContain('"move": events published from 8.0 s to 18.0 s');
    expect(text).toMatch(/rooms moved \/ total\s+1 \/ 3\n/);
    expect(text).toMatch(/terms at the end\s+0 ×1, 1 ×1, 2 ×1\n/);
    expect(text).toMatch(/anomalies \(all kinds\)\s+0\n/);
    expect(text).toMatch(/rejoins told recovered: false\s+2\n/);
    expect(text).toMatch(/latency during the move p50 \/ p99\s+90 \/ 850 ms \(400 deliveries\)\n/);
    expect(text).toMatch(/latency over the run p50 \/ p99\s+60 \/ 900 ms \(2,000 deliveries\)\n/);
    // The shift, visible: publishes per publisher region before and after.
    expect(text).toMatch(/publisher region\s+before the shift\s+after\n\s+asia\s+16\s+44\n/);
    expect(text).toMatch(/room\s+publishers\s+home at end\s+term\s+moves\s+move p50\s+move p99\s+run p50\s+run p99\n/);
    expect(text).toMatch(/room-0\s+asia → eu\s+eu\s+2\s+1\s+80\s+800\s+50\s+810\n/);
    expect(text).toMatch(/room-2\s+us → asia\s+not placed\s+0\s+0\s+–\s+–\s+–\s+–/);
    // The peers: no homes, no terms, the rest as for geo.
    expect(text).toContain("Home move (socketio): publishers moved to each room's next region at 8.0 s");
    expect(text).toMatch(/rooms moved \/ total\s+– \/ 3\n\s+terms at the end\s+–\n\s+anomalies \(all kinds\)\s+5\n/);
    expect(text).toMatch(/room-1\s+eu → us\s+–\s+–\s+–\s+95\s+850\s+70\s+900\n/);
    expect(formatSummary(sample)).not.toContain('Home move');
  });

  it('says so when the server gave no terms', () => {
    const text = formatSummary({ ...report, runs: [{ ...moved, terms: undefined }] });
    expect(text).toMatch(/rooms moved \/ total\s+– \/ 3\n\s+terms at the end\s+not reported by the server\n/);
  });

  it('is a Markdown table of figures, of publishes per region, and of rooms', () => {
    const markdown = formatMarkdown(report);
    expect(markdown).toContain(
      "Home move (geo): publishers moved to each room's next region at 8.0 s:\n\n" +
        '"move": events published from 8.0 s to 18.0 s (the shift + 2 × the move window); "run": every event. Latency in ms, send to first arrival.\n\n' +
        '| figure | value |\n|---|---:|\n| rooms moved / total | 1 / 3 |',
    );
    expect(markdown).toContain('| rejoins told recovered: false | 2 |');
    expect(markdown).toContain('| publisher region | before the shift | after |\n|---|---:|---:|\n| asia | 16 | 44 |');
    expect(markdown).toContain('| room-0 | asia → eu | eu | 2 | 1 | 80 | 800 | 50 | 810 |');
    expect(formatMarkdown(sample)).not.toContain('Home move');
  });

  it('is a section of the HTML report', () => {
    const html = renderHtml(report);
    expect(html).toContain('<h2>Home move</h2>');
    expect(html).toContain('<td>rooms moved / total</td><td>1 / 3</td>');
    expect(html).toContain(
      '<td>room-0</td><td>asia → eu</td><td>eu</td><td>2</td><td>1</td><td>80</td><td>800</td><td>50</td><td>810</td>',
    );
    expect(renderHtml(sample)).not.toContain('Home move');
  });
});

describe('ratioText', () => {
  it('reads as a multiple of the base', () => {
    expect(ratioText(130, 100)).toBe('1.3x');
    expect(ratioText(2500, 100)).toBe('25x');
    expect(ratioText(5, 0)).toBe('');
    expect(ratioText(undefined, 3)).toBe('');
  });
});

describe('progressLine', () => {
  it('is one line with every counter', () => {
    const line = progressLine({
      impl: 'geo',
      phase: 'publishing',
      elapsedMs: 12_400,
      connected: 10_000,
      reconnecting: 3,
      published: 1200,
      acked: 1190,
      delivered: 50_000,
      deliveredPerSec: 4100.4,
    });
    expect(line).toBe(
      '[geo] publishing 12 s · connected 10,000 · reconnecting 3 · published 1,200 · acked 1,190 · delivered 50,000 (4,100/s)',
    );
    expect(line).not.toContain('\n');
  });
});

describe('renderHtml', () => {
  const html = renderHtml(sample);

  it('is one self-contained document: no script, no external reference', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|href=/i);
  });

  it('draws histograms and timelines per impl, with fault markers', () => {
    // Two histograms, two timelines and the server chart.
    expect(html.match(/<svg /g)).toHaveLength(5);
    expect(html).toContain('same region: 1,000 deliveries');
    expect(html).toContain('cross region: 1,000 deliveries');
    expect(html).toContain('stroke-dasharray');
    expect(html.match(/us back/g)?.length).toBeGreaterThanOrEqual(2);
  });

  describe('the server chart', () => {
    const chart = html.slice(html.indexOf('<h2>Server memory and CPU</h2>'));
    const svg = chart.slice(0, chart.indexOf('</svg>'));
    /** The [x, y] points of one run's series. */
    const points = (impl: string, series: 'rss' | 'cpu'): number[][] => {
      const match = new RegExp(`<polyline data-run="${impl}" data-series="${series}" points="([^"]*)"`).exec(svg);
      expect(match).not.toBeNull();
      return (match?.[1] ?? '').split(' ').map((point) => point.split(',').map(Number));
    };

    it('draws one RSS and one CPU line per impl, a point per sample, on shared axes', () => {
      for (const impl of ['geo', 'socketio']) {
        const rss = points(impl, 'rss');
        expect(rss).toHaveLength(4);
        // Later samples further right; the highest point (smallest y) is the peak sample, the third.
        for (let i = 1; i < rss.length; i++) expect(rss[i][0]).toBeGreaterThan(rss[i - 1][0]);
        expect(rss.map(([, y]) => y).indexOf(Math.min(...rss.map(([, y]) => y)))).toBe(impl === 'geo' ? 2 : 1);
        // CPU: a step per sample (the second before it).
        expect(points(impl, 'cpu')).toHaveLength(8);
      }
      // One y scale for both: pixels per MiB agree (geo 100 → 180 MiB, socketio 200 → 260 MiB).
      const [geo, socketio] = [points('geo', 'rss'), points('socketio', 'rss')];
      const perMiB = [(geo[0][1] - geo[2][1]) / 80, (socketio[0][1] - socketio[1][1]) / 60];
      expect(perMiB[0]).toBeGreaterThan(0);
      expect(perMiB[1]).toBeCloseTo(perMiB[0], 1);
      // CPU: geo's 150% second sits higher than socketio's 120% one.
      expect(points('geo', 'cpu')[2][1]).toBeLessThan(points('socketio', 'cpu')[2][1]);
    });

    it("states each impl's figures and marks the faults once for all impls", () => {
      expect(svg).toContain('geo: RSS 100.0 MiB first, 180.0 MiB peak, 140.0 MiB last · CPU 80% mean, 150% max');
      expect(svg).toContain('socketio: RSS 200.0 MiB first, 260.0 MiB peak, 240.0 MiB last · CPU 93% mean, 120% max');
      // Both runs had the same two faults: one dashed line each, not one per run.
      expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
      expect(svg).toContain('SIGKILL us &lt;region-down&gt; &amp; co');
    });

    it('says so when no run has samples', () => {
      const bare = renderHtml({ ...sample, runs: [run('geo', result({ sameP99: 10, crossP99: 100 }), 100)] });
      expect(bare).toContain('no server samples');
    });
  });

  it('escapes every text that came from the run', () => {
    expect(html).toContain('SIGKILL us &lt;region-down&gt; &amp; co');
    expect(html).toContain('&lt;note&gt;');
    expect(html).toContain('never delivered &lt;b&gt;');
    expect(html).not.toContain('<region-down>');
    expect(html).not.toContain('<b>');
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('colours the anomaly counts: zero green, non-zero red', () => {
    const table = html.slice(html.indexOf('<table class="anomalies">'), html.indexOf('</table>'));
    expect(table).toMatch(/<td>lost \(member × acked event\)<\/td><td class="ok">0<\/td><td class="bad">3<\/td>/);
    expect(table.match(/class="bad"/g)).toHaveLength(2);
    expect(table.match(/class="ok"/g)).toHaveLength(12);
  });

  it('shows the summary figures side by side with the ratio, and the parameters', () => {
    expect(html).toContain('<th>socketio/geo</th>');
    expect(html).toContain('<td class="ratio">1.3x</td>');
    expect(html).toContain('<dt>regions</dt><dd>[&quot;asia&quot;,&quot;eu&quot;,&quot;us&quot;]</dd>');
  });
});

describe('writing the reports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-report-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the JSON report round-trips, the HTML file is renderHtml', async () => {
    await writeJsonReport(sample, join(dir, 'r.json'));
    await writeHtmlReport(sample, join(dir, 'r.html'));
    expect(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'))).toEqual(sample);
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toBe(renderHtml(sample));
  });
});

describe('takeover', () => {
  const geo = sample.runs[0];
  const takenOver: ImplRun = {
    ...geo,
    check: { ...geo.check, gaps: 120 },
    takeovers: {
      killAtS: 6,
      rooms: ['room-2', 'room-5'],
      writableAfter: { count: 2, p50: 5200, p95: 7400, p99: 7400, max: 7400 },
      neverWritable: 0,
    },
  };
  const report: LabReport = { ...sample, scenario: 'region-down', runs: [takenOver, sample.runs[1]] };

  it('counts the rooms taken over, when each was writable again, and the announced gaps apart from silent anomalies, in every report', () => {
    const text = formatSummary(report);
    expect(text).toContain('Takeover (geo): a region and its brokers killed at 6.0 s\n');
    expect(text).toMatch(/rooms taken over\s+2\n/);
    expect(text).toMatch(/writable again p50 \/ p99 \/ max\s+5,200 \/ 7,400 \/ 7,400 ms\n/);
    expect(text).toMatch(/rejoins told recovered: false\s+120\n/);
    expect(text).toMatch(/lost, announced \(member × acked event, told recovered: false after it\)\s+0\n/);
    expect(text).toMatch(/anomalies \(silent: lost, duplicated, reordered, …\)\s+0/);
    expect(formatMarkdown(report)).toContain('| rooms taken over | 2 |');
    expect(renderHtml(report)).toContain('<h2>Takeover</h2>');
    expect(formatSummary(sample)).not.toContain('Takeover');
  });
});
