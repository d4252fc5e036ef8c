import type { BrokerKind } from '../deployment/deployment.types.js';
import type { Impl } from '../load/load.types.js';

/** Everything one lab invocation runs with; the CLI fills it, the report prints it back. */
export interface LabOptions {
  /** Implementations run one after the other on the same load, so figures compare within one invocation. */
  impls: Impl[];
  /** geo's broker; the peers always run on Redis. */
  broker: BrokerKind;
  regions: string[];
  instances: number;
  clients: number;
  roomSize: number;
  publishersPerRoom: number;
  /**
   * Rooms with a home region (`--affinity`): room i's "room region" is regions[i mod n], this
   * share of its members live there and publish from there, the rest spread over the other
   * regions. Absent: every room is spread over every region.
   */
  affinity?: number;
  /** Extra environment of the geo-ws servers (`--server-env KEY=VALUE`), after the scenario's own. */
  serverEnv?: Record<string, string>;
  /** Messages per second per publisher. */
  rate: number;
  /** Seconds of publishing. */
  duration: number;
  payloadBytes: number;
  /** One-way delay between two regions, by `a-b`. */
  delays: Record<string, number>;
  defaultDelayMs: number;
  jitterMs: number;
  lossPercent: number;
  netns: 'auto' | 'on' | 'off';
  workers: number;
  connectConcurrency: number;
  /** Longest wait for the last deliveries after publishing stops, in seconds. */
  settle: number;
  /** The scenario's own knobs (victim region, fault times, ...). */
  scenario: Partial<Record<string, string | number | boolean>>;
  json?: string;
  html?: string;
  /** Also write every publish and every client's log here (`<file>.<impl>.json`), for analysis. */
  logs?: string;
  /** No live progress line (tests, CI logs). */
  quiet: boolean;
  /**
   * How geo clients encode frames: JSON text, MessagePack binary, or JSON with
   * permessage-deflate (the regions compress frames from 128 bytes up). The peers always use their own.
   */
  wire: 'json' | 'msgpack' | 'deflate';
  /** Write CPU profiles of the server processes to `<dir>/<impl>/` (they are written when a server exits). */
  cpuProf?: string;
}

export const DEFAULT_DELAYS: Record<string, number> = { 'asia-eu': 80, 'eu-us': 40, 'asia-us': 70 };

export const DEFAULT_OPTIONS: LabOptions = {
  impls: ['geo'],
  broker: 'nats-supercluster',
  regions: ['asia', 'eu', 'us'],
  instances: 1,
  clients: 1000,
  roomSize: 50,
  publishersPerRoom: 1,
  rate: 2,
  duration: 20,
  payloadBytes: 64,
  delays: DEFAULT_DELAYS,
  defaultDelayMs: 50,
  jitterMs: 0,
  lossPercent: 0,
  netns: 'auto',
  workers: 2,
  connectConcurrency: 200,
  settle: 30,
  scenario: {},
  quiet: false,
  wire: 'json',
};
