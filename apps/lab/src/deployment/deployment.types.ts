import type { Impl, RegionTarget } from '../load/load.types.js';

/** Where the rooms' logs live and how the regions' broker nodes are joined. */
export type BrokerKind = 'nats-supercluster' | 'nats-stretched' | 'redis';

export interface DeploymentOptions {
  impl: Impl;
  /** geo: any; the peers always run on `redis` (their adapters need Redis pub/sub). */
  broker: BrokerKind;
  /** Region names, e.g. ['asia', 'eu', 'us']. */
  regions: string[];
  /** Server processes per region. */
  instances: number;
  /** One-way delay between two regions, by `a-b` in either order, e.g. { 'asia-eu': 80 }. Missing pairs: `defaultDelayMs`. */
  delays: Record<string, number>;
  defaultDelayMs: number;
  /** Jitter added to each chunk's delay, uniform in [0, jitterMs], order kept. */
  jitterMs: number;
  /** Share of packets dropped on inter-region links, in percent (needs namespaces). */
  lossPercent: number;
  /** Network namespaces per region: `auto` uses them when possible, `off` keeps everything on loopback. */
  netns: 'auto' | 'on' | 'off';
  /** NATS stream replicas (stretched cluster: 3 by default). */
  natsReplicas?: number;
  /** geo only: the demo authority's secret every region checks tokens with. */
  demoSecret: string;
  /** Separates this run's data from other runs on any shared broker. */
  namespace: string;
  /**
   * Clients reach their home region through a link proxy too (no delay, no loss), so a
   * fault can black-hole a region for its own clients (`stallRegion`). Off: they connect
   * directly, with no user-space hop.
   */
  homeClientLinks?: boolean;
  /** Extra environment for every server process. */
  env?: Record<string, string>;
  /** Write a V8 CPU profile of every server process into this folder when it exits (`--cpu-prof`). */
  cpuProfileDir?: string;
  /** Progress and fault lines. */
  log?: (line: string) => void;
}

/** A running deployment: brokers, links, server processes; faults are methods. */
export interface Deployment {
  readonly regions: string[];
  /** Whether regions run in their own network namespaces, and why not if not. */
  readonly network: { namespaces: boolean; reason?: string; lossPercent: number };
  /** Targets for a client living in `home`: instance `index % instances` there, then the other regions nearest first (through link proxies). */
  targetsFor(home: string, index: number): RegionTarget[];
  /** PIDs of the running server processes (not brokers), for CPU and memory. */
  serverPids(): number[];
  brokerPids(): number[];
  /** SIGKILL every server process of `region`. */
  killRegion(region: string): Promise<void>;
  /** Start every server process of `region` again; resolves when all are ready. */
  startRegion(region: string): Promise<void>;
  /**
   * Black-holes every client path into `region` (its own clients' links, needs
   * `homeClientLinks`, and the other regions' failover links to it): its processes keep
   * running and their sockets stay open, nothing reaches them and nothing they send
   * reaches a client, no FIN, no RST. Broker links stay up, as with `killRegion`.
   */
  stallRegion(region: string): void;
  /** Undoes `stallRegion`: held bytes go out (late), then held closes. */
  healRegion(region: string): void;
  /** Rolling restart: SIGTERM one instance, wait for its exit, start it, wait until ready, next. */
  drainRegion(region: string): Promise<void>;
  /**
   * SIGKILL one broker node. NATS: the node of `region`. Redis: `primary` kills the
   * primary, a region name kills that region's replica. Returns a label for the timeline.
   */
  killBroker(target: string): Promise<string>;
  restartBroker(target: string): Promise<void>;
  /** Every link between regions `a` and `b` (broker and client links): reset and refuse. */
  cutLink(a: string, b: string): void;
  /** Every link between `a` and `b` stays open but forwards nothing. */
  stallLink(a: string, b: string): void;
  healLink(a: string, b: string): void;
  /** Change the loss on every inter-region link (no-op without namespaces). */
  setLoss(percent: number): Promise<void>;
  /** Stops everything the deployment started (processes by PID, proxies, namespaces, temp dirs). Idempotent. */
  stop(): Promise<void>;
}
