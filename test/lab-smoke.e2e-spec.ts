/**
 * The lab's CI smoke: small steady, region-down and partition runs of the sample app on
 * NATS and on Redis, through the same code as `npm run lab`. Asserts what geo-ws promises
 * (nothing lost, duplicated or reordered, seqs without gaps); prints timings, never asserts them.
 */
import { describe, expect, test } from '@jest/globals';
import { DEFAULT_OPTIONS, type LabOptions } from '../apps/lab/src/scenarios/lab-options.js';
import { runLab } from '../apps/lab/src/run/lab-run.js';
import { noAnomalies } from '../apps/lab/src/check/checker.js';
import { formatSummary } from '../apps/lab/src/report/terminal.js';
import { SCENARIOS } from '../apps/lab/src/scenarios/scenarios.js';

const SMALL: Partial<LabOptions> = {
  impls: ['geo'],
  clients: 300,
  roomSize: 30,
  publishersPerRoom: 2,
  rate: 4,
  duration: 8,
  workers: 2,
  settle: 20,
  quiet: true,
};

/** Every member received every acked event of its room: nothing more, nothing less. */
const NO_ANOMALIES = noAnomalies();

const RUNS: { title: string; scenario: string; knobs: LabOptions['scenario']; faults: number }[] = [
  { title: 'steady', scenario: 'steady', knobs: {}, faults: 0 },
  { title: 'region-down', scenario: 'region-down', knobs: { 'kill-at': 2, 'restart-after': 3 }, faults: 2 },
  // Shorter than the SDK's heartbeat timeout: the clients wait, nothing fails over, nothing is lost.
  { title: 'region-down --mode stall', scenario: 'region-down', knobs: { 'kill-at': 2, 'restart-after': 3, mode: 'stall' }, faults: 2 },
  { title: 'partition', scenario: 'partition', knobs: { 'cut-at': 2, 'heal-after': 3 }, faults: 2 },
];

// Follow the sun on NATS (room logs move only there): every room's publishers move to the
// next region at 4 s, and with a 3 s window the servers move each room's log after them.
test('home-move on nats-supercluster: every room moves, zero lost, duplicated, reordered, none told recovered: false', async () => {
  const scenario = SCENARIOS.find((candidate) => candidate.name === 'home-move')!;
  const options: LabOptions = {
    ...DEFAULT_OPTIONS,
    ...scenario.defaults,
    ...SMALL,
    duration: 16,
    broker: 'nats-supercluster',
    scenario: { 'move-at': 4, 'move-window': 3 },
  };
  const report = await runLab(scenario, options);
  console.log(formatSummary(report));
  const [run] = report.runs;
  expect(run.check.anomalies).toEqual(NO_ANOMALIES);
  expect(run.check.gaps).toBe(0); // no member was told recovered: false
  const rooms = Object.keys(run.homes ?? {});
  expect(rooms).toHaveLength(options.clients / options.roomSize);
  expect(Object.values(run.terms ?? {})).toEqual(rooms.map(() => 2));
}, 180_000);

describe.each(['nats-supercluster', 'redis'] as const)('lab smoke on %s', (broker) => {
  test.each(RUNS)(
    '$title: zero lost, duplicated, reordered',
    async ({ scenario: name, knobs, faults }) => {
      const scenario = SCENARIOS.find((candidate) => candidate.name === name)!;
      const options: LabOptions = { ...DEFAULT_OPTIONS, ...scenario.defaults, ...SMALL, broker, scenario: knobs };
      const report = await runLab(scenario, options);
      console.log(formatSummary(report));
      const [run] = report.runs;
      expect(run.connect.failed).toBe(0);
      expect(run.faults).toHaveLength(faults);
      expect(run.check.publishes.acked).toBeGreaterThan(0.9 * run.check.publishes.total);
      expect(run.check.anomalies).toEqual(NO_ANOMALIES);
      expect(run.check.deliveries).toBeGreaterThanOrEqual(run.check.publishes.acked * options.roomSize);
      if (name === 'region-down' && knobs.mode === 'stall') expect(run.faults[0].label).toBe('stall region us');
      else if (name === 'region-down') {
        expect(run.check.failover.count).toBeGreaterThanOrEqual(options.clients / options.regions.length);
        // The SDK clients' timelines see the same failovers as the checker.
        expect(run.failoverPhases?.completed).toBe(run.check.failover.count);
      }
    },
    180_000,
  );
});
