import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { writeHtmlReport } from '../report/html.js';
import { writeJsonReport } from '../report/json.js';
import type { ImplRun, LabReport } from '../report/report.types.js';
import type { Scenario } from '../scenarios/scenario.js';
import type { LabOptions } from '../scenarios/lab-options.js';
import { roomRegions } from './client-plan.js';
import { Progress } from './progress.js';
import { runImpl } from './run-impl.js';

/**
 * One lab invocation: the scenario once per implementation, on the same clients, rooms
 * and rates, one after the other (never at once: they would share the two cores), then
 * one report with every run side by side.
 */
export async function runLab(scenario: Scenario, options: LabOptions): Promise<LabReport> {
  // Before any process starts: a scenario that cannot run with these options says why now.
  scenario.validate?.(options);
  const progress = new Progress(options.quiet);
  const startedAt = new Date();
  const runs: ImplRun[] = [];
  const notes = new Set<string>();
  for (const impl of options.impls) {
    const { run, network } = await runImpl(impl, scenario, options, progress);
    runs.push(run);
    notes.add(networkNote(network));
    if (impl !== 'geo' && options.broker !== 'redis')
      notes.add(`${impl} runs on Redis (primary + a replica per region): its adapter needs Redis pub/sub.`);
    if (run.limitedBy) notes.add(`${impl}: ${run.limitedBy}`);
    const note = impl === 'geo' ? scenario.note?.(options) : undefined;
    if (note) notes.add(note);
  }
  const report: LabReport = {
    scenario: scenario.name,
    startedAt: startedAt.toISOString(),
    machine: { cpus: cpus().length, node: process.version, platform: `${process.platform} ${process.arch}` },
    parameters: { ...options, scenario: scenario.name, knobs: options.scenario },
    roomRegions: roomRegions(options),
    notes: [...notes],
    runs,
  };
  for (const [file, write] of [
    [options.json, writeJsonReport],
    [options.html, writeHtmlReport],
  ] as const) {
    if (!file) continue;
    mkdirSync(dirname(file), { recursive: true });
    await write(report, file);
  }
  return report;
}

function networkNote(network: { namespaces: boolean; reason?: string; lossPercent: number }): string {
  if (network.namespaces) {
    return `Each region ran in its own network namespace; inter-region links lost ${network.lossPercent}% of packets (nftables), delay and jitter from user-space link proxies.`;
  }
  return (
    `Regions shared the loopback network (${network.reason ?? 'namespaces off'}): delay, jitter, stalls and cuts came from the link proxies; ` +
    (network.lossPercent > 0 ? `packet loss (${network.lossPercent}% asked) was NOT simulated.` : 'no packet loss was asked.')
  );
}
