import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import type { GeoStateStore } from './geo-state-store.interface.js';
import type { GeoLogRef } from './log-ref.js';
import type { GeoRoomHome } from './room-home.js';

/**
 * The room log: the one pluggable part that gives geo-ws its guarantees.
 *
 * Every implementation must pass the shared contract suite
 * (`describeTransportContract` from `@geo-ws/nest/testing`) unchanged.
 *
 * Positions (`seq`) are positive and strictly increasing within a log incarnation (its
 * `epoch`), and a log's events are stored and delivered in `seq` order (G2). They need
 * not be consecutive: memory and Redis number each log 1, 2, 3…, NATS uses stream
 * sequences, which skip the numbers of other rooms' events ({@link GeoTransport.contiguousSeq}
 * says which). Callers compare positions and never count them: "no gap" below means no
 * event missing, not consecutive numbers.
 */
export interface GeoTransport {
  /** Short name used in logs and `/readyz`, e.g. `memory`, `nats`, `redis`. */
  readonly name: string;

  /**
   * True when every log is numbered 1, 2, 3… with no number skipped (memory, Redis); false
   * when seqs may skip numbers (NATS: stream sequences shared by rooms). `geo.joined`
   * carries it as `contiguous: true`, so clients can count a skipped seq as a gap. The
   * contract suite checks it against its `gapFreeSeq` option.
   */
  readonly contiguousSeq: boolean;

  /**
   * Connects to the broker. Idempotent: concurrent and repeated calls share one attempt;
   * after a failed attempt the next call tries again. Rejects with `GeoConfigError` when
   * the broker refuses the configuration (options the transport cannot work with fail
   * earlier, in its factory), with `GeoTransportUnavailableError` when the broker cannot
   * be reached, and after `close()`.
   */
  connect(): Promise<void>;

  /** True while appends and reads can be served (drives `/readyz`). */
  isReady(): boolean;

  /**
   * Appends an event unless its `event_id` was appended to the same log within the dedup
   * window (G1), in which case nothing is stored and the original `seq` is returned with
   * `duplicate: true`. Resolves only once the event is stored with the durability the
   * transport promises (G4). Rejects with `GeoTransportUnavailableError` when the log
   * cannot be reached; the caller may retry with the same `event_id`.
   */
  append(log: GeoLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult>;

  /**
   * Reads up to `limit` events with `seq > afterSeq`, in `seq` order. When retention
   * may have removed events the caller asked for, `truncated` is true and the answer
   * starts at the first retained event (see {@link GeoReadResult.truncated}).
   */
  read(log: GeoLogRef, afterSeq: number, limit: number): Promise<GeoReadResult>;

  /**
   * The log's incarnation and bounds without reading events. A join whose `since` is at or
   * past `lastSeq` is answered `recovered: true` without a read, so `lastSeq` is never
   * below an event retention removed: a log emptied by retention reports a position at or
   * after its last event, never 0 (see {@link GeoLogHead.lastSeq}).
   */
  head(log: GeoLogRef): Promise<GeoLogHead>;

  /**
   * Delivers every event with `seq > afterSeq` to `onEvent`, in order, none missing and
   * none repeated, first the stored ones then live ones, until the handle is closed. The
   * server opens one tail per (node, log), never one per client. `onError` is called if
   * the tail cannot continue (the log was deleted or lost and started again, retention
   * removed events it had not delivered yet), after which it delivers nothing more.
   * Rejects with `GeoTransportUnavailableError` when the tail cannot start: the log is
   * unreachable, or retention removed events after `afterSeq` (read from the first
   * retained event, then tail from there).
   */
  tail(
    log: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<GeoSubscription>;

  /** At-most-once, not stored: typing indicators, cursors (G5). */
  publishEphemeral(log: GeoLogRef, envelope: GeoEnvelopeDraft): Promise<void>;

  /** Receives ephemeral events published on this log by any region. */
  subscribeEphemeral(log: GeoLogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<GeoSubscription>;

  /**
   * `per-room` when each global room's log lives in its own home region, chosen at its
   * first append (memory, NATS with `roomHomes`); `fixed` when every global log lives in
   * one place (Redis, NATS without `roomHomes`). The module refuses a `placement` option
   * on a `fixed` transport.
   */
  readonly placement: GeoRoomHome['placement'];

  /**
   * Where a global room's log lives and under which fencing term (`GET /geo/rooms/:room`).
   * Transports that place each room's log in its own home region (memory, NATS with
   * `roomHomes`) answer `placement: 'per-room'`; others `fixed`. Reads only: asking
   * places nothing.
   */
  home(room: string): Promise<GeoRoomHome>;

  /**
   * Moves a global room's log to `region` (per-room transports; `GeoWsModuleOptions.placement`
   * returning `'auto'` calls it when a room's traffic moved). Never loses, repeats or
   * reorders an event: appends in flight are acked once, an `event_id` retried after the
   * move is still a duplicate, and positions taken before the move stay valid (the epoch
   * does not change). Resolves with the new home (the current one if it is there already);
   * a room with no home is placed there. Transports with `placement: 'fixed'` leave it out.
   */
  move?(room: string, region: string): Promise<GeoRoomHome>;

  /** Sessions, revocations and presence, on the same broker (G6). */
  readonly state: GeoStateStore;

  /**
   * Deletes a log and its history and tells its tails (`onError`). The next append
   * starts a new incarnation: a new `epoch`; gap-free transports number it from 1 again,
   * NATS goes on with the stream's sequence.
   */
  deleteLog(log: GeoLogRef): Promise<void>;

  /** Stops every tail and subscription and disconnects. Idempotent. */
  close(): Promise<void>;
}

/**
 * Injection token of the active `GeoTransport`.
 * @example constructor(@Inject(GeoTransport) private readonly transport: GeoTransport) {}
 */
export const GeoTransport = Symbol('GeoTransport');

export interface GeoAppendResult {
  seq: number;
  /** Identifies the log incarnation; clients resume only against the same epoch (G3). */
  epoch: string;
  /** True when this `event_id` was already in the log: nothing was stored. */
  duplicate: boolean;
}

export interface GeoReadResult {
  epoch: string;
  events: GeoLoggedEnvelope[];
  /**
   * True when retention may have removed events after `afterSeq`; never false when it
   * did, including when every event of the log is gone, whichever instance or region
   * appended before or after. A transport whose seqs skip numbers (NATS) cannot always
   * tell whether the numbers before its first retained event were this log's, and says
   * true then (docs/TRANSPORTS.md, NATS "Retention", lists when).
   */
  truncated: boolean;
  /** The log's head when the read happened: as {@link GeoLogHead.lastSeq}. */
  lastSeq: number;
}

export interface GeoLogHead {
  epoch: string;
  /** The first retained `seq` (`lastSeq + 1` when nothing is retained). */
  firstSeq: number;
  /**
   * The last assigned `seq`. For a log with no event retained: a position at or after
   * every event it ever had, below every event it will get (a fresh joiner starts there):
   * 0 for a log that never had one on transports that number each log (memory, Redis);
   * NATS, which keeps nothing of a room whose events are gone, answers the stream's last
   * sequence.
   */
  lastSeq: number;
}

export interface GeoSubscription {
  close(): Promise<void>;
}

/** Everything a transport factory is told about the region it serves. */
export interface GeoTransportContext {
  /** This process's region. */
  region: string;
  /** All region names, in directory order. */
  regions: readonly string[];
  /** How long an `event_id` is remembered for deduplication (G1). */
  dedupWindowMs: number;
  /** History retention: whichever limit is reached first trims the log. */
  retention: { maxEvents: number; maxAgeMs: number };
  /**
   * The home region of a global room whose first event this region appends
   * (`GeoWsModuleOptions.placement`, checked to name a region). Default: this region.
   */
  placeRoom?: (room: string) => string;
  /**
   * The region `placement` names for a global room when its answer is a region rather
   * than left to the first append (`'auto'` or none): per-room transports place such a
   * room as soon as a member tails it, so its first event waits for no placement.
   */
  placeOnJoin?: (room: string) => string | undefined;
}

/**
 * How `GeoWsModule` builds its transport: a function of this region's context.
 * @example transport: memoryTransport({ network })
 */
export type GeoTransportFactory = (context: GeoTransportContext) => GeoTransport | Promise<GeoTransport>;
