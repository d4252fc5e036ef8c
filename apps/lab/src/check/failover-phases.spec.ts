import { describe, expect, it } from '@jest/globals';

import { FailoverTimeline } from '../load/clients/failover-timeline.js';
import type { ClientLog } from '../load/load.types.js';
import { failoverPhases } from './failover-phases.js';

const T0 = 1_700_000_000_000;

function client(id: string, failovers?: number[]): ClientLog {
  return { id, home: 'us', rooms: [], connectivity: [], gaps: 0, errors: {}, ...(failovers ? { failovers } : {}) };
}

/** A failover recorded the way GeoLoadClient records it, at ms offsets from T0. */
function recorded(steps: {
  left: number;
  attempts: [start: number, open?: number][];
  backoff: number[];
  welcome?: number;
  joined?: number;
  event?: number;
}): number[] {
  const timeline = new FailoverTimeline();
  timeline.event(); // before any failover: ignored
  timeline.attempt(T0); // the first connection: ignored
  timeline.left(T0 + steps.left);
  timeline.left(T0 + steps.left + 1); // a second state change in the same failover: ignored
  for (const delay of steps.backoff) timeline.retrying(delay);
  for (const [start, open] of steps.attempts) {
    timeline.attempt(T0 + start);
    if (open !== undefined) timeline.socketOpen(T0 + open);
  }
  if (steps.welcome !== undefined) timeline.welcomed(T0 + steps.welcome);
  if (steps.joined !== undefined) timeline.joined(T0 + steps.joined);
  return timeline.values;
}

describe('failoverPhases', () => {
  it('is undefined for the peers (no client kept a timeline)', () => {
    expect(failoverPhases([client('a'), client('b')], [T0])).toBeUndefined();
  });

  it('splits a failover at its milestones, from the last fault step before it', () => {
    // Fault at 1,000 (and a recovery at 9,000, after the failover left open); left open at 1,300;
    // backoff 200 + 400; a first attempt at 1,500 that never opened, the second at 2,200,
    // open at 2,260, welcome at 2,300, every room at 2,450.
    const values = recorded({
      left: 1300,
      backoff: [200, 400],
      attempts: [[1500], [2200, 2260]],
      welcome: 2300,
      joined: 2450,
    });
    const result = failoverPhases([client('a', values)], [T0 + 9000, T0 + 1000])!;
    const byPhase = Object.fromEntries(result.phases.map((p) => [p.phase, p]));
    expect(result).toMatchObject({ failovers: 1, completed: 1, attempts: { p50: 2, max: 2 } });
    expect(byPhase.detect.p50).toBe(300);
    expect(byPhase.backoff.p50).toBe(600);
    // 2,200 - 1,300 - 600: the attempt that failed.
    expect(byPhase['earlier attempts'].p50).toBe(300);
    expect(byPhase['dial + handshake'].p50).toBe(60);
    expect(byPhase.welcome.p50).toBe(40);
    expect(byPhase.rejoin.p50).toBe(150);
    // No event after it yet.
    expect(byPhase['replay (first event)'].count).toBe(0);
    expect(byPhase['down → back in every room'].p50).toBe(1150);
    expect(byPhase['fault → back in every room'].p50).toBe(1450);
  });

  it('records the first event after the rejoin, once', () => {
    const timeline = new FailoverTimeline();
    timeline.left(T0);
    timeline.attempt(T0 + 10);
    timeline.socketOpen(T0 + 20);
    timeline.welcomed(T0 + 30);
    timeline.joined(T0 + 40);
    const before = Date.now();
    timeline.event();
    const firstEventAt = timeline.values[7];
    timeline.event();
    expect(firstEventAt).toBeGreaterThanOrEqual(before);
    expect(timeline.values[7]).toBe(firstEventAt);
    expect(timeline.values).toHaveLength(8);
  });

  it('gives quantiles over every failover that reached a phase, and counts the unfinished ones', () => {
    // 100 clients: detect 1..100 ms after the fault; the last one never got back.
    const clients = Array.from({ length: 100 }, (_, i) =>
      client(
        `c${i}`,
        recorded(
          i === 99
            ? { left: 1000 + i + 1, backoff: [], attempts: [[2000]] }
            : { left: 1000 + i + 1, backoff: [0], attempts: [[1200, 1250]], welcome: 1300, joined: 1400 },
        ),
      ),
    );
    const result = failoverPhases(clients, [T0 + 1000])!;
    const detect = result.phases.find((p) => p.phase === 'detect')!;
    expect(result.failovers).toBe(100);
    expect(result.completed).toBe(99);
    expect(detect).toMatchObject({ count: 100, p50: 51, p95: 96, p99: 100, max: 100 });
    expect(result.phases.find((p) => p.phase === 'rejoin')).toMatchObject({ count: 99, p50: 100, max: 100 });
  });

  it('has no detect for a failover before any fault step', () => {
    const result = failoverPhases(
      [client('a', recorded({ left: 500, backoff: [], attempts: [[600, 650]], welcome: 700, joined: 800 }))],
      [T0 + 1000],
    )!;
    expect(result.phases.find((p) => p.phase === 'detect')!.count).toBe(0);
    expect(result.phases.find((p) => p.phase === 'down → back in every room')!.p50).toBe(300);
  });
});
