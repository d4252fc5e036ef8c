import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { check } from '../check/checker.js';
import { failoverPhases } from '../check/failover-phases.js';
import { checkPublisherShift } from '../check/publisher-shift.js';
import { checkTakeovers } from '../check/takeovers.js';
import { startDeployment } from '../deployment/deployment.js';
import type { Deployment } from '../deployment/deployment.types.js';
import { LoadFleet } from '../load/fleet.js';
import type { Impl, ProgressSample } from '../load/load.types.js';
import type { FaultEvent, ImplRun, ServerStats } from '../report/report.types.js';
import type { FaultContext, Scenario } from '../scenarios/scenario.js';
import { planClients } from './client-plan.js';
import type { LabOptions } from '../scenarios/lab-options.js';
import { CpuMeter } from './process-stats.js';
import { Progress } from './progress.js';
import { askRoomHomes } from './room-homes.js';

/** The demo authority's issuer and audience in the sample app (apps/chat/src/config.ts). */
const DEMO_ISSUER = 'geo-ws-demo';
const DEMO_AUDIENCE = 'geo-ws-chat';
/** `--wire deflate`: regions compress frames from this size up (a chat event is ~300 bytes; acks and pongs stay whole). */
const DEFLATE_THRESHOLD = 128;
/** Workers report their counters once a second: wait this long for the last report of a window. */
const PROGRESS_REPORT_MS = 1100;
/** Deliveries unchanged for this long after publishing stops (and nobody reconnecting): the run has settled. */
const QUIET_MS = 3000;

/**
 * One implementation through one scenario: deploy, connect every client, publish for
 * `duration` seconds while the scenario's faults fire, wait for the last deliveries,
 * collect every log and check it.
 */
export async function runImpl(
  impl: Impl,
  scenario: Scenario,
  options: LabOptions,
  progress: Progress,
): Promise<{ run: ImplRun; network: Deployment['network'] }> {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const broker = impl === 'geo' ? options.broker : 'redis';
  const demoSecret = randomBytes(32).toString('hex');
  progress.phase(impl, `starting ${options.regions.length} regions × ${options.instances} on ${broker}`);
  const deployment = await startDeployment({
    impl,
    broker,
    regions: options.regions,
    instances: options.instances,
    delays: options.delays,
    defaultDelayMs: options.defaultDelayMs,
    jitterMs: options.jitterMs,
    lossPercent: options.lossPercent,
    netns: options.netns,
    demoSecret,
    namespace: `lab${runId}`,
    homeClientLinks: scenario.homeClientLinks?.(options) ?? false,
    env: {
      ...scenario.env?.(options),
      ...(impl === 'geo' && options.wire === 'deflate' ? { GEO_COMPRESSION_THRESHOLD: String(DEFLATE_THRESHOLD) } : {}),
      ...(impl === 'geo' ? options.serverEnv : {}),
    },
    cpuProfileDir: options.cpuProf && join(options.cpuProf, impl),
    log: (line) => progress.note(line),
  });
  let fleet: LoadFleet | undefined;
  try {
    const meter = new CpuMeter();
    const brokerMeter = new CpuMeter();
    const loadMeter = new CpuMeter();
    const rssBaselineBytes = meter.sample(deployment.serverPids());
    const plan = planClients(options, deployment);
    fleet = await LoadFleet.start({
      workers: options.workers,
      plan: {
        impl,
        runId,
        auth: impl === 'geo' ? { secret: demoSecret, issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE, regions: options.regions } : undefined,
        wire: impl === 'geo' ? options.wire : undefined,
        publishRatePerSec: options.rate,
        payloadBytes: options.payloadBytes,
        connectConcurrency: options.connectConcurrency,
      },
      clients: plan.clients,
    });
    const activeFleet = fleet;

    progress.phase(impl, `connecting ${options.clients} clients`);
    const connectStarted = Date.now();
    const ticker = setInterval(() => progress.tick(activeFleet.progress()), 1000);
    const connected = await fleet.connect();
    const connectTotalMs = Date.now() - connectStarted;
    const rssLoadedBytes = meter.sample(deployment.serverPids());

    const startedAt = Date.now();
    const faults: FaultEvent[] = [];
    const samples: ServerStats['samples'] = [];
    let lastCpu = meter.cpuSeconds;
    // Servers, brokers and load workers read together, so their CPU covers the same window.
    const sampleAll = (): number => {
      brokerMeter.sample(deployment.brokerPids());
      loadMeter.sample(activeFleet.pids());
      return meter.sample(deployment.serverPids());
    };
    const sampler = setInterval(() => {
      const rssBytes = sampleAll();
      samples.push({ t: (Date.now() - startedAt) / 1000, rssBytes, cpuPercent: (meter.cpuSeconds - lastCpu) * 100 });
      lastCpu = meter.cpuSeconds;
    }, 1000);
    sampleAll();
    const cpuAtStart = meter.cpuSeconds;
    const brokerCpuAtStart = brokerMeter.cpuSeconds;
    const loadCpuAtStart = loadMeter.cpuSeconds;

    progress.phase(impl, `publishing for ${options.duration} s`);
    const bytesReadAtStart = fleet.progress().bytesRead;
    fleet.startPublishing();
    const faultsDone = runFaults(scenario, options, deployment, activeFleet, plan.clients, startedAt, faults, progress);
    await sleep(options.duration * 1000);
    fleet.stopPublishing();
    await faultsDone;

    progress.phase(impl, 'waiting for the last deliveries');
    const settled = await settle(fleet, options.settle * 1000);
    const windowMs = Date.now() - startedAt;
    await sleep(PROGRESS_REPORT_MS);
    const bytesRead = fleet.progress().bytesRead - bytesReadAtStart;
    clearInterval(sampler);
    sampleAll();
    clearInterval(ticker);

    progress.phase(impl, 'collecting logs');
    const logs = await fleet.collect();
    if (options.logs) {
      mkdirSync(dirname(options.logs), { recursive: true });
      writeFileSync(`${options.logs}.${impl}.json`, JSON.stringify({ startedAt, members: plan.members, ...logs }));
    }
    const result = check({
      impl,
      publishes: logs.publishes,
      clients: logs.clients,
      members: plan.members,
      // Redis and memory number each room's log 1, 2, 3…; NATS uses the stream's sequence (docs/TRANSPORTS.md).
      contiguousSeqs: impl === 'geo' && broker === 'redis',
      startedAt,
    });
    const homes = impl === 'geo' ? await roomHomes(options, deployment, Object.keys(plan.members), progress) : undefined;
    const shift = scenario.publisherShift?.(options);
    const shiftCheck = shift && checkPublisherShift({ shift, publishes: logs.publishes, clients: logs.clients, startedAt });
    const killAtS = impl === 'geo' ? scenario.brokersKilledAtS?.(options) : undefined;
    const takeovers =
      killAtS === undefined
        ? undefined
        : checkTakeovers({ killedAt: startedAt + killAtS * 1000, killAtS, publishes: logs.publishes, terms: homes?.terms });
    const phases = failoverPhases(
      logs.clients,
      faults.map((fault) => startedAt + fault.at),
    );
    const connections = options.clients - connected.failed.length;
    const cpuSeconds = meter.cpuSeconds - cpuAtStart;
    const sorted = [...connected.connectMs].sort((a, b) => a - b);
    const run: ImplRun = {
      impl,
      broker,
      check: result,
      server: {
        cpuSeconds,
        brokerCpuSeconds: brokerMeter.cpuSeconds - brokerCpuAtStart,
        loadCpuSeconds: loadMeter.cpuSeconds - loadCpuAtStart,
        rssBaselineBytes,
        rssLoadedBytes,
        bytesPerConnection: connections > 0 ? (rssLoadedBytes - rssBaselineBytes) / connections : 0,
        samples,
      },
      connect: {
        clients: options.clients,
        failed: connected.failed.length,
        totalMs: connectTotalMs,
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
      },
      throughput: result.deliveries / (windowMs / 1000),
      cpuPer1kDeliveries: result.deliveries > 0 ? (cpuSeconds * 1000) / result.deliveries : 0,
      ...(impl === 'geo' && result.deliveries > 0 ? { wire: options.wire, bytesReadPerDelivery: bytesRead / result.deliveries } : {}),
      faults,
      ...(phases ? { failoverPhases: phases } : {}),
      ...(homes ?? {}),
      ...(shiftCheck ? { publisherShift: shiftCheck } : {}),
      ...(takeovers ? { takeovers } : {}),
      limitedBy:
        [
          connected.failed.length > 0 ? connectFailures(connected.failed, options.clients) : '',
          settled
            ? ''
            : `deliveries were still arriving ${options.settle} s after publishing stopped (overloaded?): "lost" counts events not delivered by then`,
        ]
          .filter(Boolean)
          .join('; ') || undefined,
      durationMs: windowMs,
    };
    return { run, network: deployment.network };
  } finally {
    progress.phase(impl, 'stopping');
    await fleet?.close();
    await deployment.stop();
  }
}

/**
 * geo, after the load: where each room's log ended up and under which term, asking one
 * instance per room (rooms spread over the regions and their instances). None when the
 * server does not say.
 */
async function roomHomes(
  options: LabOptions,
  deployment: Deployment,
  rooms: string[],
  progress: Progress,
): Promise<Pick<ImplRun, 'homes' | 'terms'> | undefined> {
  progress.phase('geo', `asking where ${rooms.length} rooms live`);
  const regions = options.regions;
  const answer = await askRoomHomes(rooms, (_, i) => deployment.targetsFor(regions[i % regions.length], Math.floor(i / regions.length)));
  if ('homes' in answer) return { homes: answer.homes, ...(Object.keys(answer.terms).length > 0 ? { terms: answer.terms } : {}) };
  progress.note(`homes: not reported by the server (${answer.notReported})`);
  return undefined;
}

/** Fires the scenario's steps at their times, one after the other, and records them on the timeline. */
async function runFaults(
  scenario: Scenario,
  options: LabOptions,
  deployment: Deployment,
  fleet: LoadFleet,
  clients: { id: string; home: string; publishTo: string[] }[],
  startedAt: number,
  faults: FaultEvent[],
  progress: Progress,
): Promise<void> {
  const context: FaultContext = {
    deployment,
    options,
    clients,
    pauseReading: (ids, ms) => fleet.pauseReading(ids, ms),
    setPublishing: (ids, on) => fleet.setPublishing(ids, on),
  };
  for (const step of scenario.steps(options)) {
    const wait = startedAt + step.atS * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    faults.push({ at: Date.now() - startedAt, label: step.label });
    progress.note(`t=${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${step.label}`);
    await step.run(context);
  }
}

/** Waits until deliveries stop changing and nobody is reconnecting, or `maxMs`; false when it never got quiet. */
async function settle(fleet: LoadFleet, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  let last: ProgressSample = fleet.progress();
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await sleep(500);
    const now = fleet.progress();
    if (now.delivered !== last.delivered || now.reconnecting > 0 || now.acked !== last.acked) quietSince = Date.now();
    last = now;
    if (Date.now() - quietSince >= QUIET_MS) return true;
  }
  return false;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** "120 of 10000 clients could not connect (EMFILE ×100, timeout ×20)". */
function connectFailures(failed: { error: string }[], total: number): string {
  const reasons = new Map<string, number>();
  for (const { error } of failed) reasons.set(error, (reasons.get(error) ?? 0) + 1);
  const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 3);
  return `${failed.length} of ${total} clients could not connect (${top.map(([reason, count]) => `${reason} ×${count}`).join(', ')})`;
}
