import { Logger } from '@nestjs/common';
import type { NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import type {
  GeoAppendResult,
  GeoTransport,
  GeoTransportContext,
  GeoTransportFactory,
  GeoLogHead,
  GeoReadResult,
  GeoSubscription,
} from '../geo-transport.interface.js';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoStateStore } from '../geo-state-store.interface.js';
import { globalLog, type GeoLogRef } from '../log-ref.js';
import type { GeoRoomHome } from '../room-home.js';
import { loadNats, type NatsClients } from './load-nats.js';
import { NatsAppends } from './nats-appends.js';
import { joinEpoch, NatsEpochs } from './nats-epochs.js';
import { generationPart, HomeStreamReplacedError, NatsHomes } from './nats-homes.js';
import { setUpError, unavailable } from './nats-errors.js';
import { NatsHomedLogs } from './nats-homed-logs.js';
import { NatsLogReader } from './nats-log.reader.js';
import { NatsMoves } from './nats-moves.js';
import { NatsNames, type NatsLogRef } from './nats-names.js';
import { NatsPublisher } from './nats-publisher.js';
import { pastSegmentLogs } from './nats-segments.js';
import { DEFAULT_TAKEOVER_AFTER_MS, MIN_TAKEOVER_AFTER_MS, NatsTakeovers } from './nats-takeovers.js';
import { NatsStateStore } from './nats-state.store.js';
import { NatsStreams, type NatsBuckets } from './nats-streams.js';
import { DEFAULT_SHARED_TAIL_FROM, DEFAULT_TAIL_GIVE_UP_MS, MIN_TAIL_GIVE_UP_MS, NatsTails } from './nats-tails.js';
import type { GeoNatsTransportOptions } from './nats-transport.options.js';

/** How long connect() waits for this region's mirrors of the other regions' room logs before going on without them. */
const MIRRORS_AT_BOOT_MS = 3000;
/** A mirror that could not be made is tried again after this long. */
const MIRROR_RETRY_MS = 5000;
/** Time limit of each JetStream request when `requestTimeoutMs` is not set. */
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/**
 * The room log on NATS JetStream.
 * @example transport: natsTransport({ servers: (region) => `nats://nats-${region}:4222`, homeCluster: 'eu' })
 */
export function natsTransport(options: GeoNatsTransportOptions): GeoTransportFactory {
  return (context) => new NatsTransport(options, context);
}

/**
 * Mapping (see docs/TRANSPORTS.md):
 * - one stream per namespace for global logs (`GEOWS_<NS>`, subjects `geows.<ns>.g.<room>`),
 *   one per region for regional logs; the room id is one base64url subject token
 *   ({@link NatsNames}; streams and buckets are set up by {@link NatsStreams});
 * - a room log is the messages of its subject; `seq` is the stream sequence, so it is
 *   strictly increasing per room (G2) and skips the numbers of other rooms' events. (A
 *   gap-free per-room counter would need `Nats-Expected-Last-Subject-Sequence`, which
 *   clustered streams before 2.10 do not serialise: nats-server#4320.)
 * - G1: `Nats-Msg-Id` = log key + `event_id`, within the stream's duplicate window;
 * - G3: reads ({@link NatsLogReader}) and tails ({@link NatsTails}) start after `since`
 *   with consumers filtered on the room; whether retention removed events after it is
 *   decided from the stream's first and last sequences and the room's first and last
 *   events, the same in every process and region (nothing is kept per room for it);
 * - a log's epoch ({@link NatsEpochs}) is its KV entry (`0` until `deleteLog` rotates it,
 *   so reading or joining a room creates no entry) joined to its stream's creation time;
 *   messages carry the KV part, and a tail checks the stream's incarnation whenever it
 *   gets a new consumer, so no event of a stream created again reaches a tail of the old one.
 *
 * - appends ({@link NatsAppends}) are pipelined per log, their acks matched on one inbox
 *   ({@link NatsPublisher}) rather than one request (timer, Error objects) per publish.
 *
 * This class owns the connection (connect, status, close) and the ephemeral path, and
 * composes the parts above.
 */
export class NatsTransport implements GeoTransport {
  readonly name = 'nats';
  /** Stream sequences are shared by every room of the stream. */
  readonly contiguousSeq = false;
  readonly placement: GeoRoomHome['placement'];
  readonly state: GeoStateStore;
  private readonly logger = new Logger(NatsTransport.name);
  private readonly names: NatsNames;
  private readonly timeoutMs: number;
  private readonly streams: NatsStreams;
  private readonly epochs: NatsEpochs;
  private readonly reads: NatsLogReader;
  private readonly tails: NatsTails;
  private readonly appends: NatsAppends;
  /** Room homes (`roomHomes`): records, moves, and logs across segments; `undefined` when every global log is in the global stream. */
  private readonly homes: NatsHomes | undefined;
  private readonly moves: NatsMoves | undefined;
  private readonly takeovers: NatsTakeovers | undefined;
  private readonly homedLogs: NatsHomedLogs | undefined;
  /**
   * Per home region: the incarnation of its home stream this region's mirror copies (see
   * `mirrors`); `false` while it is being made, absent when not looked at yet.
   */
  private readonly mirrorsReady = new Map<string, string | false>();
  /** Ephemeral subscriptions and the epoch watcher, ended by close(). */
  private readonly subscriptions = new Set<() => void>();
  /** The connection as soon as it exists, so close() can end it even in the middle of connect(). */
  private nc: NatsConnection | undefined;
  private clients: NatsClients | undefined;
  private buckets: NatsBuckets | undefined;
  private connecting: Promise<void> | undefined;
  private connected = false;
  private closed = false;

  constructor(
    private readonly options: GeoNatsTransportOptions,
    private readonly context: GeoTransportContext,
  ) {
    this.names = new NatsNames(options.namespace ?? 'geo');
    const sharedTailFrom = options.sharedTailFrom ?? DEFAULT_SHARED_TAIL_FROM;
    if (!(sharedTailFrom >= 1))
      throw new GeoConfigError(`natsTransport: sharedTailFrom must be at least 1 (or Infinity), got ${sharedTailFrom}`);
    const tailGiveUpMs = options.tailGiveUpMs ?? DEFAULT_TAIL_GIVE_UP_MS;
    if (!(tailGiveUpMs >= MIN_TAIL_GIVE_UP_MS))
      throw new GeoConfigError(
        `natsTransport: tailGiveUpMs must be at least ${MIN_TAIL_GIVE_UP_MS} (two missed heartbeats and a retry), got ${tailGiveUpMs}`,
      );
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const clients = () => this.require();
    this.streams = new NatsStreams(this.names, options, context, this.timeoutMs, () => this.closed);
    this.epochs = new NatsEpochs(this.names, clients, () => this.requireBuckets().epochs);
    this.reads = new NatsLogReader(this.names, this.epochs, clients, this.timeoutMs, this.streams.mirrors);
    this.tails = new NatsTails(this.names, this.epochs, this.reads, clients, sharedTailFrom, tailGiveUpMs, (log, incarnation) =>
      this.readStream(log, incarnation),
    );
    this.placement = options.roomHomes ? 'per-room' : 'fixed';
    this.homes = options.roomHomes
      ? new NatsHomes(
          this.names,
          clients,
          () => this.requireBuckets().homes!,
          this.epochs,
          (region) => this.streams.ensureHomeStream(this.require(), region),
          (key, generation) => this.tails.regenerated(key, generationPart(generation)),
        )
      : undefined;
    const takeoverAfterMs = options.takeoverAfterMs ?? DEFAULT_TAKEOVER_AFTER_MS;
    if (!(takeoverAfterMs >= MIN_TAKEOVER_AFTER_MS))
      throw new GeoConfigError(
        `natsTransport: takeoverAfterMs must be at least ${MIN_TAKEOVER_AFTER_MS} (or Infinity), got ${takeoverAfterMs}`,
      );
    this.takeovers =
      this.homes && takeoverAfterMs !== Infinity
        ? new NatsTakeovers(this.names, this.homes, this.epochs, context.region, context.regions, takeoverAfterMs)
        : undefined;
    this.moves =
      this.homes &&
      new NatsMoves(this.names, this.homes, this.epochs, this.reads, clients, context.dedupWindowMs, (log) =>
        this.readStream(log, log.home.incarnation),
      );
    this.homedLogs = this.homes && new NatsHomedLogs(this.homes, this.reads, this.tails);
    const placeRoom = context.placeRoom ?? (() => context.region);
    this.appends = new NatsAppends(this.names, this.epochs, this.reads, clients, this.homes, this.moves, placeRoom, this.takeovers);
    this.state = new NatsStateStore(
      () => this.requireBuckets(),
      (error) => unavailable(this.clients?.nats, error),
    );
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new GeoTransportUnavailableError('the NATS transport was closed; connect a new one'));
    this.connecting ??= this.open().catch(async (error: unknown) => {
      this.connecting = undefined;
      await this.nc?.close().catch(() => undefined);
      throw error;
    });
    return this.connecting;
  }

  isReady(): boolean {
    return this.connected && !this.closed;
  }

  append(log: GeoLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult> {
    return this.appends.append(log, draft);
  }

  read(log: GeoLogRef, afterSeq: number, limit: number): Promise<GeoReadResult> {
    return this.located(log, async (located) => {
      if (located?.home) return this.homedLogs!.read({ ...located, home: located.home }, afterSeq, limit);
      if (located) return this.reads.read(located, afterSeq, limit);
      // No home: nothing was ever appended. A position past 0 cannot be of this log.
      return { epoch: await this.unplacedEpoch(log), events: [], truncated: afterSeq > 0, lastSeq: 0 };
    });
  }

  head(log: GeoLogRef): Promise<GeoLogHead> {
    return this.located(log, async (located) => {
      if (located?.home) return this.homedLogs!.head({ ...located, home: located.home });
      return located ? this.reads.head(located) : { epoch: await this.unplacedEpoch(log), firstSeq: 1, lastSeq: 0 };
    });
  }

  tail(
    log: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<GeoSubscription> {
    return this.located(log, (located) => {
      if (located?.home) return this.homedLogs!.tail({ ...located, home: located.home }, afterSeq, onEvent, onError);
      return located ? this.tails.open(located, afterSeq, onEvent, onError) : this.tailUnplaced(log, afterSeq, onEvent, onError);
    });
  }

  /** At most once: handed to the connection, never confirmed. */
  publishEphemeral(log: GeoLogRef, envelope: GeoEnvelopeDraft): Promise<void> {
    try {
      const { nc } = this.require();
      nc.publish(this.names.ephemeralSubject(log), JSON.stringify(envelope));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(unavailable(this.clients?.nats, error));
    }
  }

  async subscribeEphemeral(log: GeoLogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<GeoSubscription> {
    const { nc, nats } = this.require();
    const subscription: NatsSubscription = nc.subscribe(this.names.ephemeralSubject(log), {
      callback: (error, message) => {
        if (error) return;
        try {
          onEvent(message.json<GeoEnvelopeDraft>());
        } catch {
          // Not JSON: not ours. Ephemeral delivery is best effort by definition.
        }
      },
    });
    const stop = () => subscription.unsubscribe();
    this.subscriptions.add(stop);
    // A round trip makes sure the server registered the interest before we say subscribed.
    await nc.flush().catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    return {
      close: () => {
        this.subscriptions.delete(stop);
        stop();
        return Promise.resolve();
      },
    };
  }

  /**
   * Without room homes every global log lives in the global stream: its region is the
   * cluster that holds the stream, when the clusters are named after the regions (a
   * supercluster; not a stretched cluster).
   */
  async home(room: string): Promise<GeoRoomHome> {
    if (this.homes) return this.homes.home(globalLog(room));
    const { jsm, nats } = this.require();
    const cluster = await jsm.streams
      .info(this.names.globalStream)
      .then((info) => info.cluster?.name)
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    const region = cluster !== undefined && this.context.regions.includes(cluster) ? cluster : null;
    return { room, region, term: 0, placement: this.placement };
  }

  /**
   * Moves a global room's log to `region` (with `roomHomes`): see {@link NatsMoves}. Takes
   * at least the lease (two seconds); appends meanwhile go on and are acked once it ends.
   */
  async move(room: string, region: string): Promise<GeoRoomHome> {
    if (!this.moves) throw new GeoConfigError('natsTransport: moving a room needs roomHomes: true');
    if (!this.context.regions.includes(region))
      throw new GeoConfigError(`cannot move room "${room}" to "${region}": not one of ${this.context.regions.join(', ')}`);
    const { home } = await this.moves.move(globalLog(room), region);
    return { room, region: home?.region ?? null, term: home?.term ?? 0, placement: 'per-room' };
  }

  async deleteLog(log: GeoLogRef): Promise<void> {
    const { jsm, nats } = this.require();
    const located: NatsLogRef = this.homes ? await this.homes.locate(log) : log;
    // New epoch first, then purge: readers skip whatever of the old epoch is still there.
    await this.epochs.rotate(log);
    if (this.homes && log.scope === 'global' && !located.home) return; // no home: nothing stored
    // Every segment the record keeps: the room's events are under one subject per segment.
    const segments = located.home ? [...pastSegmentLogs({ ...located, home: located.home }), located] : [located];
    for (const segment of segments) {
      await jsm.streams.purge(this.names.stream(segment), { filter: this.names.subject(segment) }).catch((error: unknown) => {
        throw unavailable(nats, error);
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    this.tails.closeAll();
    this.clients?.publisher.close();
    for (const stop of [...this.subscriptions]) stop();
    this.subscriptions.clear();
    await this.connecting?.catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
  }

  // ---- room homes ----------------------------------------------------------------------

  /**
   * Runs `use` with the log where it lives: as it is without room homes or for a regional
   * log, with its home, or `undefined` for a global room with none yet. A home stream found
   * created again since the room's record was written renews the record (a new generation,
   * so a new epoch) and `use` runs again once.
   */
  private async located<T>(log: GeoLogRef, use: (located: NatsLogRef | undefined) => Promise<T>): Promise<T> {
    if (!this.homes || log.scope === 'regional') return use(log);
    const located = await this.homes.locate(log);
    if (!located.home) return use(undefined);
    try {
      return await use(located);
    } catch (error) {
      if (!(error instanceof HomeStreamReplacedError)) throw error;
      return use(await this.homes.renew(located, error.incarnation));
    }
  }

  /** The epoch of a room with no home: the one its first append will start (generation 0). */
  private async unplacedEpoch(log: GeoLogRef): Promise<string> {
    return joinEpoch(await this.epochs.logEpoch(log), generationPart(0));
  }

  /**
   * A tail of a room nobody appended to yet: it waits for the room's home (the first
   * append places it, in any region) and then reads the home stream from the start of the
   * log, so no event is missed between the two.
   */
  private tailUnplaced(
    log: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<GeoSubscription> {
    let tail: GeoSubscription | undefined;
    let closed = false;
    // A room its placement names a region for is placed now, not at its first append: the
    // tail opens on its home meanwhile, and the first event waits for nothing. A failure
    // leaves it to the first append.
    const named = this.context.placeOnJoin?.(log.room);
    if (named) void this.homes!.place(log, named).catch(() => undefined);
    const stopWaiting = this.homes!.whenPlaced(log, (located) => {
      if (closed) return;
      this.homedLogs!.tail({ ...located, home: located.home! }, afterSeq, onEvent, onError, true).then(
        (opened) => {
          if (closed) void opened.close();
          else tail = opened;
        },
        (error: unknown) => {
          if (!closed) onError?.(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
    const stop = () => {
      closed = true;
      stopWaiting();
      this.subscriptions.delete(stop);
      void tail?.close();
    };
    this.subscriptions.add(stop);
    return Promise.resolve({
      close: () => {
        stop();
        return Promise.resolve();
      },
    });
  }

  // ---- mirrors ------------------------------------------------------------------------

  /**
   * Where a log's live events are read from: this region's mirror of another region's home
   * stream once it is there and copies the home stream's current incarnation (it is made
   * in the background, see {@link prepareMirror}), else the log's own stream.
   */
  private readStream(log: NatsLogRef, incarnation: string): string {
    const home = log.home?.region;
    if (!home || home === this.context.region || !this.streams.mirrors) return this.names.stream(log);
    const mirrored = this.mirrorsReady.get(home);
    if (mirrored === incarnation) return this.names.mirrorStream(home, this.context.region);
    // Not looked at yet, or a copy of an earlier home stream: (re)made in the background.
    if (mirrored !== false) void this.prepareMirror(home);
    return this.names.stream(log);
  }

  /**
   * Makes (or, with `setup: 'verify'`, looks for) this region's mirror of `home`'s stream.
   * Never fails the caller: until it is there, tails read the home stream itself, and a
   * failure is tried again later.
   */
  private async prepareMirror(home: string): Promise<void> {
    this.mirrorsReady.set(home, false);
    try {
      const clients = this.require();
      const { region } = this.context;
      const mirrored =
        this.options.setup === 'verify'
          ? await this.streams.mirrored(clients, home, region)
          : await this.streams.ensureMirror(clients, home, region);
      if (mirrored) this.mirrorsReady.set(home, mirrored);
      else this.mirrorsReady.delete(home);
    } catch (error) {
      this.logger.warn(
        `no mirror of region "${home}"'s room logs in ${this.context.region} yet (tails read them from ${home} meanwhile): ${error instanceof Error ? error.message : String(error)}`,
      );
      // Tried again a little later (tails meanwhile read the home stream).
      setTimeout(() => {
        if (!this.closed) void this.prepareMirror(home);
      }, MIRROR_RETRY_MS).unref();
    }
  }

  // ---- connection ----------------------------------------------------------------------

  private async open(): Promise<void> {
    const nats = await loadNats();
    const { servers } = this.options;
    const nc = await nats.core
      .connect({
        servers: typeof servers === 'function' ? servers(this.context.region) : servers,
        name: `geo-ws ${this.context.region}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 5000,
        // nats.js captures two stack traces per request by default (a RequestError and a
        // TimeoutError, made before the answer comes): 5 % of a region's CPU while it took
        // in 1,000 failing-over clients (lab region-down, --cpu-prof), and a cost on every
        // publish. geo-ws names what failed in its own errors.
        noAsyncTraces: true,
        ...this.options.connection,
      })
      .catch((error: unknown) => {
        throw new GeoTransportUnavailableError(`cannot reach NATS: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      });
    this.nc = nc;
    this.connected = true;
    void this.watchStatus(nc);
    const js = nats.jetstream.jetstream(nc, { timeout: this.timeoutMs });
    const jsm = await nats.jetstream.jetstreamManager(nc, { timeout: this.timeoutMs }).catch((error: unknown) => {
      throw setUpError(nats, 'the JetStream context', error);
    });
    this.clients = { nats, nc, js, jsm, publisher: new NatsPublisher(nats, nc, this.timeoutMs) };
    await this.streams.setUp(this.clients);
    this.buckets = await this.streams.openBuckets(this.clients);
    if (this.homes) this.subscriptions.add(await this.homes.watch().catch((error: unknown) => Promise.reject(unavailable(nats, error))));
    if (this.takeovers) this.subscriptions.add(this.takeovers.watch());
    // Mirrors of the other regions' home streams: waited for a little, so the first tails
    // read them, but never failing the boot (a region away now gets its mirror later).
    if (this.streams.mirrors) {
      const prepared = this.context.regions.filter((region) => region !== this.context.region).map((region) => this.prepareMirror(region));
      await Promise.race([Promise.all(prepared), new Promise((resolve) => setTimeout(resolve, MIRRORS_AT_BOOT_MS).unref())]);
    }
    const stopWatching = await this.epochs
      .watch(this.buckets.epochs, (key, epoch) => this.tails.rotated(key, epoch))
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    this.subscriptions.add(stopWatching);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.logger.warn(`NATS connection of region "${this.context.region}" lost; reconnecting`);
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.log(`NATS connection of region "${this.context.region}" restored`);
        // The server we reconnected to may not host the old consumers: start fresh ones.
        this.tails.renewAll();
        this.homes?.recheckWaiting();
      }
    }
  }

  private require(): NatsClients {
    if (!this.clients || this.closed) throw new GeoTransportUnavailableError('the NATS transport is not connected');
    if (!this.connected) throw new GeoTransportUnavailableError('the connection to NATS is down; retry');
    return this.clients;
  }

  private requireBuckets(): NatsBuckets {
    this.require();
    if (!this.buckets) throw new GeoTransportUnavailableError('the NATS transport is not connected');
    return this.buckets;
  }
}
