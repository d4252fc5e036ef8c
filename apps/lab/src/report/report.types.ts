import type { CheckResult } from '../check/check.types.js';
import type { FailoverPhases } from '../check/failover-phases.js';
import type { PublisherShiftCheck } from '../check/publisher-shift.js';
import type { TakeoverCheck } from '../check/takeovers.js';
import type { Impl } from '../load/load.types.js';

/** A fault or recovery on the run's timeline. */
export interface FaultEvent {
  /** ms since the run started. */
  at: number;
  label: string;
}

/** Server processes (not brokers) over the measured window. */
export interface ServerStats {
  /** CPU seconds (user + system) of every server process during the publish window. */
  cpuSeconds: number;
  brokerCpuSeconds: number;
  /** The load workers' CPU seconds in the same window: near one core each means the load, not the server, was the limit. */
  loadCpuSeconds?: number;
  /** Summed RSS before any client connected, and with every client connected. */
  rssBaselineBytes: number;
  rssLoadedBytes: number;
  /** (loaded - baseline) / connections. */
  bytesPerConnection: number;
  /** Once a second: summed server RSS and CPU use (100 = one core). */
  samples: { t: number; rssBytes: number; cpuPercent: number }[];
}

/** One implementation's run within a lab invocation. */
export interface ImplRun {
  impl: Impl;
  /** The broker it ran on. */
  broker: string;
  check: CheckResult;
  server: ServerStats;
  connect: { clients: number; failed: number; totalMs: number; p50: number; p99: number };
  /** Deliveries per second over the publish window. */
  throughput: number;
  /** Server CPU-seconds per 1,000 deliveries. */
  cpuPer1kDeliveries: number;
  /** geo: how clients encoded frames (`--wire`). */
  wire?: 'json' | 'msgpack' | 'deflate';
  /** geo: bytes the clients' TCP sockets read over the publish window (events, acks, pings, headers), per delivery. */
  bytesReadPerDelivery?: number;
  faults: FaultEvent[];
  /** geo: where each failover's time went (detect, backoff, dial, welcome, rejoin, replay). */
  failoverPhases?: FailoverPhases;
  /** geo: each room's home region at the end of the run (`null`: not placed yet); absent when the server did not report them. */
  homes?: Record<string, string | null>;
  /** geo: each room's home term at the end (1: its first home, one more per move), for the rooms the server gave one. */
  terms?: Record<string, number>;
  /** Scenarios that move publishers mid-run (`home-move`): latency during the move, publishes per region before and after. */
  publisherShift?: PublisherShiftCheck;
  /** Runs that killed a region with its brokers (`region-down --brokers`, geo): the rooms taken over, and when each was writable again. */
  takeovers?: TakeoverCheck;
  /** Set when something stopped the run short (e.g. clients that could not connect), in words. */
  limitedBy?: string;
  durationMs: number;
}

export interface LabReport {
  scenario: string;
  startedAt: string;
  machine: { cpus: number; node: string; platform: string };
  /** Every option the run used, exactly. */
  parameters: Record<string, unknown>;
  /** `--affinity` runs: room → its room region, where most of its members and its publishers lived. */
  roomRegions?: Record<string, string>;
  /** What was and was not simulated (namespaces, loss), and other notes for the reader. */
  notes: string[];
  runs: ImplRun[];
}
