import { describe, expect, it } from '@jest/globals';

import { DEFAULT_OPTIONS, type LabOptions } from './lab-options.js';
import type { FaultContext, Scenario } from './scenario.js';
import { SCENARIOS } from './scenarios.js';

const homeMove = SCENARIOS.find((scenario) => scenario.name === 'home-move') as Scenario;

/** The options the CLI builds for home-move: the lab's defaults, the scenario's, then these. */
function options(over: Partial<LabOptions> = {}): LabOptions {
  return { ...DEFAULT_OPTIONS, ...homeMove.defaults, clients: 150, roomSize: 50, ...over };
}

/** Runs the scenario's steps against a context that records every setPublishing call. */
async function publishingCalls(o: LabOptions): Promise<{ atS: number; label: string; calls: [string[], boolean][] }[]> {
  const fired = [];
  for (const step of homeMove.steps(o)) {
    const calls: [string[], boolean][] = [];
    const context = { setPublishing: (ids: string[], on: boolean) => calls.push([ids, on]) } as unknown as FaultContext;
    await step.run(context);
    fired.push({ atS: step.atS, label: step.label, calls });
  }
  return fired;
}

describe('home-move', () => {
  it('defaults: regional rooms (affinity 0.8) and 60 s of publishing, 50 of them after the shift at 10 s', () => {
    expect(homeMove.defaults).toMatchObject({ affinity: 0.8, duration: 60 });
    expect(homeMove.publisherShift?.(options())).toMatchObject({ atS: 10, duringS: 20 });
  });

  it("at --move-at, turns every room's publishers off and as many members of its next region on", async () => {
    expect(await publishingCalls(options({ scenario: { 'move-at': 8 } }))).toEqual([
      {
        atS: 8,
        label: 'publishers move to the next region (asia → eu, eu → us, us → asia)',
        calls: [
          [['c0', 'c50', 'c100'], false],
          [['c40', 'c90', 'c140'], true],
        ],
      },
    ]);
  });

  it("asks geo's servers to place rooms by their traffic, over --move-window", () => {
    expect(homeMove.env?.(options())).toEqual({ GEO_PLACEMENT: 'auto', GEO_HOME_MOVE_WINDOW_MS: '10000' });
    const short = options({ scenario: { 'move-window': 2.5 } });
    expect(homeMove.env?.(short)).toEqual({ GEO_PLACEMENT: 'auto', GEO_HOME_MOVE_WINDOW_MS: '2500' });
    // "During the move": the shift plus twice the window.
    expect(homeMove.publisherShift?.(short)).toMatchObject({ atS: 10, duringS: 5 });
  });

  it('refuses, before anything starts, options it cannot run', () => {
    expect(() => homeMove.validate?.(options())).not.toThrow();
    expect(() => homeMove.validate?.(options({ affinity: undefined }))).toThrow(/--affinity/);
    expect(() => homeMove.validate?.(options({ affinity: 1 }))).toThrow(/room-0 has 0 non-publishing members in eu/);
    expect(() => homeMove.validate?.(options({ scenario: { 'move-at': 60 } }))).toThrow(/--move-at 60/);
    expect(() => homeMove.validate?.(options({ scenario: { 'move-window': 0 } }))).toThrow(/--move-window 0/);
    // geo's logs cannot move on Redis; the peers always run on it, and have no logs to move.
    expect(() => homeMove.validate?.(options({ broker: 'redis' }))).toThrow(/--broker nats-supercluster or nats-stretched/);
    expect(() => homeMove.validate?.(options({ broker: 'redis', impls: ['socketio', 'ceiling'] }))).not.toThrow();
  });
});

describe('region-down --brokers', () => {
  const regionDown = SCENARIOS.find((scenario) => scenario.name === 'region-down') as Scenario;
  const withKnobs = (scenario: LabOptions['scenario']): LabOptions => ({ ...DEFAULT_OPTIONS, scenario });

  /** The deployment calls each step makes, in order. */
  async function deploymentCalls(o: LabOptions): Promise<string[][]> {
    const fired: string[][] = [];
    for (const step of regionDown.steps(o)) {
      const calls: string[] = [];
      const record = (name: string) => (target: string) => {
        calls.push(`${name} ${target}`);
        return Promise.resolve('');
      };
      const deployment = {
        killRegion: record('killRegion'),
        killBroker: record('killBroker'),
        restartBroker: record('restartBroker'),
        startRegion: record('startRegion'),
      };
      await step.run({ deployment } as unknown as FaultContext);
      fired.push([step.label, ...calls]);
    }
    return fired;
  }

  it("kills the region's servers and its brokers together, and brings the brokers back before the servers", async () => {
    expect(await deploymentCalls(withKnobs({ brokers: true, 'kill-at': 5, 'restart-after': 10 }))).toEqual([
      ['SIGKILL region us and its brokers', 'killRegion us', 'killBroker us'],
      ['region us back with its brokers', 'restartBroker us', 'startRegion us'],
    ]);
    expect(await deploymentCalls(withKnobs({ 'kill-at': 5, 'restart-after': 0 }))).toEqual([['SIGKILL region us', 'killRegion us']]);
    expect(regionDown.brokersKilledAtS?.(withKnobs({ brokers: true, 'kill-at': 5 }))).toBe(5);
    expect(regionDown.brokersKilledAtS?.(withKnobs({}))).toBeUndefined();
  });

  it('refuses --brokers with --mode stall, and for geo on Redis', () => {
    expect(() => regionDown.validate?.(withKnobs({ brokers: true, mode: 'stall' }))).toThrow(/--brokers goes with --mode kill/);
    expect(() => regionDown.validate?.({ ...withKnobs({ brokers: true }), broker: 'redis' })).toThrow(/NATS with room homes/);
    expect(() => regionDown.validate?.({ ...withKnobs({ brokers: true }), broker: 'redis', impls: ['socketio'] })).not.toThrow();
  });
});
