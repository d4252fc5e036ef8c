import type { Deployment } from '../deployment/deployment.types.js';
import type { RoomShift } from '../run/client-plan.js';
import type { LabOptions } from './lab-options.js';

/** What a fault step may act on. */
export interface FaultContext {
  deployment: Deployment;
  options: LabOptions;
  /** Every client's id, home region and the rooms it publishes to, in plan order. */
  clients: { id: string; home: string; publishTo: string[] }[];
  /** Makes these clients stop reading their sockets for `ms`. */
  pauseReading: (ids: string[], ms: number) => void;
  /** Turns publishing on (to every room the client joined, at the run's rate) or off for these clients. */
  setPublishing: (ids: string[], on: boolean) => void;
}

/**
 * Publishers handing over to others mid-run (`home-move`): the report splits the latency
 * of events published in [atS, atS + duringS] ("during the move") from the whole run's.
 */
export interface PublisherShift {
  /** Seconds after publishing starts. */
  atS: number;
  duringS: number;
  rooms: RoomShift[];
}

/** One fault or recovery, `atS` seconds after publishing starts. */
export interface FaultStep {
  atS: number;
  label: string;
  run: (context: FaultContext) => Promise<void> | void;
}

/** A scenario-specific option (`--<flag> <value>`, or `--<flag>` alone for a boolean), shown by `--help`. */
export interface ScenarioKnob {
  flag: string;
  description: string;
  default: string | number | boolean;
}

export interface Scenario {
  name: string;
  /** One line for the scenario list. */
  summary: string;
  /** Options that differ from the lab's defaults for this scenario. */
  defaults: Partial<LabOptions>;
  knobs: ScenarioKnob[];
  /** Whether clients reach their home region through a link proxy too (so a step can black-hole it); default no. */
  homeClientLinks?(options: LabOptions): boolean;
  /** Extra environment for geo's server processes (e.g. a lower slow-consumer limit), from the options (knobs). */
  env?(options: LabOptions): Record<string, string>;
  /** A line for the report's notes about how the scenario set geo up, if it did. */
  note?(options: LabOptions): string | undefined;
  /** When a region's brokers are killed (seconds after publishing starts), if the scenario does: the report counts the rooms taken over. */
  brokersKilledAtS?(options: LabOptions): number | undefined;
  /** Throws, saying why, when the options cannot run this scenario: called before anything starts. */
  validate?(options: LabOptions): void;
  /** The publishers that hand over mid-run, when the scenario moves them (the report measures the move). */
  publisherShift?(options: LabOptions): PublisherShift;
  steps(options: LabOptions): FaultStep[];
}

/** A knob's value as a number (the CLI stores knobs as given), else the default its scenario declares for `--help`. */
export function numberKnob(options: LabOptions, knobs: ScenarioKnob[], flag: string): number {
  const value = options.scenario[flag];
  if (value !== undefined) return Number(value);
  const fallback = knobs.find((knob) => knob.flag === flag)?.default;
  if (typeof fallback !== 'number') throw new Error(`scenario knob --${flag} has no numeric default`);
  return fallback;
}

export function stringKnob(options: LabOptions, flag: string, fallback: string): string {
  const value = options.scenario[flag];
  return value === undefined ? fallback : String(value);
}
