/**
 * What the lab hands its load workers and what they send back. Workers are child
 * processes (`fork`), so everything here is plain data that survives IPC.
 */

/** The server side under test: geo-ws (the sample app) or one of the peers. */
export type Impl = 'geo' | 'socketio' | 'ceiling';

/** One region a client may connect to; remote regions are reached through link proxies. */
export interface RegionTarget {
  region: string;
  /** `http://host:port` of one instance (the SDK probes and fetches through it). */
  httpUrl: string;
  /** geo: `ws://host:port/ws`; ceiling: `ws://host:port/ws`; socketio: `http://host:port`. */
  wsUrl: string;
}

/** One simulated client. */
export interface ClientPlan {
  /** Unique in the run; also the user name (token subject). */
  id: string;
  /** The region the client lives in; `targets[0]` is an instance there. */
  home: string;
  /** Home first, then the other regions nearest first (what the SDK's probe would choose). */
  targets: RegionTarget[];
  /** Rooms it joins before publishing starts. */
  rooms: string[];
  /** Rooms (a subset of `rooms`) it publishes to at the plan's rate from the start (a `set-publishing` command may change it). */
  publishTo: string[];
}

/** geo only: how workers sign the tokens the sample app's demo authority accepts (HS256, `sub` = client id). */
export interface TokenAuthority {
  secret: string;
  issuer: string;
  audience: string;
  /** The `regions` claim: every region, so a client may fail over anywhere. */
  regions: string[];
}

export interface WorkerPlan {
  impl: Impl;
  /** Unique per run, so event ids never repeat across runs (G1 would ack them as duplicates). */
  runId: string;
  /** Index of this worker, for event-id prefixes. */
  worker: number;
  clients: ClientPlan[];
  auth?: TokenAuthority;
  /** geo only: how clients encode frames (see LabOptions.wire). */
  wire?: 'json' | 'msgpack' | 'deflate';
  /** Messages per second per publisher per room. */
  publishRatePerSec: number;
  /** Size of the text payload, in bytes (padding added to the timestamped text). */
  payloadBytes: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
}

/** Lab → worker. */
export type WorkerCommand =
  | { type: 'plan'; plan: WorkerPlan }
  /** Open every client and join its rooms; answered by `ready`. */
  | { type: 'connect' }
  | { type: 'publish-start' }
  | { type: 'publish-stop' }
  /** These clients stop reading their sockets (slow consumers) for `ms`, then read again. */
  | { type: 'pause-reading'; clientIds: string[]; ms: number }
  /** These clients start publishing to every room they joined (`on`), at the plan's rate, or stop publishing. */
  | { type: 'set-publishing'; clientIds: string[]; on: boolean }
  /** Send every log (`logs`), then stay connected until `close`. */
  | { type: 'collect' }
  | { type: 'close' };

/** Worker → lab. */
export type WorkerMessage =
  | { type: 'ready'; worker: number; connectMs: number[]; failed: { id: string; error: string }[] }
  | { type: 'progress'; worker: number; sample: ProgressSample }
  | { type: 'logs'; worker: number; publishes: PublishLog[]; clients: ClientLog[] }
  | { type: 'fatal'; worker: number; error: string };

/** Counters since the worker started, sent once a second. */
export interface ProgressSample {
  connected: number;
  /** Clients currently between a disconnect and being back in all their rooms. */
  reconnecting: number;
  published: number;
  acked: number;
  delivered: number;
  errors: number;
  /** Bytes the clients' TCP sockets read (geo only; 0 for the peers). */
  bytesRead: number;
}

/**
 * One publish attempt as the publisher saw it. `number` identifies the event across
 * the run: the event id on the wire is `${runId}-${number}` and the payload text starts
 * with `${number}:${sentAt}` so every receiver can find both.
 */
export interface PublishLog {
  number: number;
  room: string;
  publisher: string;
  /** Region the publisher was connected to when it sent. */
  region: string;
  /** `Date.now()` when handed to the client library (ms). */
  sentAt: number;
  /** When the ack arrived; absent if it never did. */
  ackedAt?: number;
  /** The seq in the ack (geo only). */
  ackSeq?: number;
  duplicate?: boolean;
  /** The final error code, if the publish failed for good. */
  error?: string;
}

/** Everything one client received, per room, in arrival order (columnar for cheap IPC). */
export interface ClientLog {
  id: string;
  home: string;
  rooms: RoomLog[];
  /** Connection changes in time order: `down` at a disconnect, `up` when back in every room. */
  connectivity: { at: number; kind: 'down' | 'up'; region: string }[];
  /** geo: rooms re-joined with `recovered: false` (a gap the client was told about). */
  gaps: number;
  /** geo: each of those gaps, its room and when (`Date.now()`) it was told. */
  gapsTold?: { room: string; at: number }[];
  /** Error codes the client saw, with counts. */
  errors: Record<string, number>;
  /**
   * geo: each failover's milestones (`Date.now()`, 0 where not reached), flat,
   * {@link FAILOVER_STRIDE} numbers per failover in {@link FailoverField} order.
   */
  failovers?: number[];
}

/**
 * Where each milestone of a failover sits in {@link ClientLog.failovers}. A failover runs
 * from the SDK's state leaving `open` to being back in every room; one set per failover,
 * so a client pays a few numbers per failover and nothing per event.
 */
export const FailoverField = {
  /** The SDK's `state` left `open`. */
  leftOpenAt: 0,
  /** Connection attempts (sockets constructed) during the failover. */
  attempts: 1,
  /** The sum of the `reconnect` events' `delayMs` during the failover. */
  backoffMs: 2,
  /** The start of the last attempt (its socket constructed). */
  attemptAt: 3,
  /** That socket's `open` (TCP and WebSocket upgrade done). */
  socketOpenAt: 4,
  /** The SDK's `state` back to `open` (`geo.welcome`). */
  welcomeAt: 5,
  /** `geo.joined` for every room: back in every room. */
  joinedAt: 6,
  /** The first event delivered after that. */
  firstEventAt: 7,
} as const;
export const FAILOVER_STRIDE = 8;

export interface RoomLog {
  room: string;
  /** `PublishLog.number` of each delivery, in arrival order. */
  numbers: number[];
  /** Envelope `seq` of each delivery (geo); `-1` where the implementation has none. */
  seqs: number[];
  /** `Date.now()` at arrival (ms). */
  receivedAt: number[];
  /** Region the client was connected to at arrival. */
  regions: string[];
}
