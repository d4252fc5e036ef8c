import { FAILOVER_STRIDE, FailoverField as F, type ClientLog } from '../load/load.types.js';

/** One phase of the failovers, over every failover that reached it (ms). */
export interface PhaseStats {
  phase: string;
  /** What it measures, from which milestone to which. */
  meaning: string;
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Where the time of geo's failovers went (the SDK clients' milestones, `ClientLog.failovers`). */
export interface FailoverPhases {
  /** Failovers started (the SDK's state left `open`). */
  failovers: number;
  /** Of those, back in every room before the logs were collected. */
  completed: number;
  /** Connection attempts per completed failover. */
  attempts: { p50: number; max: number };
  phases: PhaseStats[];
}

/** The phases in reading order: each from one milestone to the next, then the totals. */
const PHASES: readonly { phase: string; meaning: string }[] = [
  { phase: 'detect', meaning: 'last fault step → SDK state leaves open' },
  { phase: 'backoff', meaning: 'sum of the reconnect events’ delayMs' },
  { phase: 'earlier attempts', meaning: 'state left open → start of the attempt that got through, minus backoff' },
  { phase: 'dial + handshake', meaning: 'that attempt’s socket created → socket open (TCP + upgrade)' },
  { phase: 'welcome', meaning: 'socket open → state open (geo.welcome)' },
  { phase: 'rejoin', meaning: 'state open → geo.joined of every room' },
  { phase: 'replay (first event)', meaning: 'last geo.joined → first event delivered after it' },
  { phase: 'down → back in every room', meaning: 'state left open → geo.joined of every room' },
  { phase: 'fault → back in every room', meaning: 'last fault step → geo.joined of every room' },
];

/**
 * Splits every geo failover into phases and gives each phase's p50/p95/p99/max. `faultsAt`
 * are the fault steps' times (`Date.now()` ms); a failover's fault is the last one at or
 * before it left `open` (none before: no detect). Undefined when no client kept a timeline
 * (the peers).
 */
export function failoverPhases(clients: readonly ClientLog[], faultsAt: readonly number[]): FailoverPhases | undefined {
  if (!clients.some((client) => client.failovers !== undefined)) return undefined;
  const faults = [...faultsAt].sort((a, b) => a - b);
  const lastFaultBefore = (at: number): number | undefined => {
    let found: number | undefined;
    for (const fault of faults) if (fault <= at) found = fault;
    return found;
  };
  const samples: number[][] = PHASES.map(() => []);
  const attempts: number[] = [];
  let failovers = 0;
  let completed = 0;
  const add = (phase: number, ms: number): void => void samples[phase].push(Math.max(0, ms));
  for (const client of clients) {
    const values = client.failovers ?? [];
    for (let offset = 0; offset + FAILOVER_STRIDE <= values.length; offset += FAILOVER_STRIDE) {
      const at = (field: number): number => values[offset + field];
      failovers++;
      const fault = lastFaultBefore(at(F.leftOpenAt));
      if (fault !== undefined) add(0, at(F.leftOpenAt) - fault);
      if (at(F.joinedAt) === 0) continue;
      completed++;
      attempts.push(at(F.attempts));
      add(1, at(F.backoffMs));
      if (at(F.attemptAt) > 0) {
        add(2, at(F.attemptAt) - at(F.leftOpenAt) - at(F.backoffMs));
        if (at(F.socketOpenAt) > 0) {
          add(3, at(F.socketOpenAt) - at(F.attemptAt));
          if (at(F.welcomeAt) > 0) add(4, at(F.welcomeAt) - at(F.socketOpenAt));
        }
      }
      if (at(F.welcomeAt) > 0) add(5, at(F.joinedAt) - at(F.welcomeAt));
      if (at(F.firstEventAt) > 0) add(6, at(F.firstEventAt) - at(F.joinedAt));
      add(7, at(F.joinedAt) - at(F.leftOpenAt));
      if (fault !== undefined) add(8, at(F.joinedAt) - fault);
    }
  }
  const sortedAttempts = Float64Array.from(attempts).sort();
  return {
    failovers,
    completed,
    attempts: { p50: quantile(sortedAttempts, 0.5), max: sortedAttempts.at(-1) ?? 0 },
    phases: PHASES.map(({ phase, meaning }, i) => {
      const sorted = Float64Array.from(samples[i]).sort();
      return {
        phase,
        meaning,
        count: sorted.length,
        p50: quantile(sorted, 0.5),
        p95: quantile(sorted, 0.95),
        p99: quantile(sorted, 0.99),
        max: sorted.at(-1) ?? 0,
      };
    }),
  };
}

/** The nearest-rank quantile of sorted values (0 when empty), as the run's other figures. */
function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
