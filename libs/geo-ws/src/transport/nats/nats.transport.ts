import { Logger } from '@nestjs/common';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, StoredMsg, StreamConfig } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import type {
  AppendResult,
  GeoTransport,
  GeoTransportContext,
  GeoTransportFactory,
  LogHead,
  ReadResult,
  Subscription,
} from '../geo-transport.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoStateStore } from '../geo-state-store.interface.js';
import type { LogRef } from '../log-ref.js';
import { loadNats, type NatsModules } from './load-nats.js';
import { NatsNames } from './nats-names.js';
import { NatsStateStore, type NatsStateBuckets } from './nats-state.store.js';
import type { NatsTransportOptions } from './nats-transport.options.js';

/** The log's own epoch (the KV part); messages of older versions carry the full epoch. */
const EPOCH_HEADER = 'Geo-Epoch';
/** The epoch of a log that was never reset: no KV entry, so joining rooms creates no state. */
const INITIAL_LOG_EPOCH = '0';
/** In-process caches per log stay below this many entries (rooms come and go). */
const CACHE_LIMIT = 10_000;
/** Marks the first event of a log incarnation: if it is still the first retained, nothing was lost. */
const FIRST_HEADER = 'Geo-First';
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const DAY = 24 * 60 * 60 * 1000;

/**
 * The room log on NATS JetStream.
 * @example transport: natsTransport({ servers: (region) => `nats://nats-${region}:4222`, homeCluster: 'eu' })
 */
export function natsTransport(options: NatsTransportOptions): GeoTransportFactory {
  return (context) => new NatsTransport(options, context);
}

/** Where one stored event sits: its stream sequence (its `seq`), its epoch, and whether it opened the log. */
interface LogPosition {
  seq: number;
  epoch: string;
  first: boolean;
}

interface TailState {
  epoch: string;
  stop(): void;
  /** Drops the current consumer; the tail's loop opens a new one where it left off. */
  renew(): void;
  onError?: (error: Error) => void;
}

/**
 * Mapping (see docs/TRANSPORTS.md):
 * - one stream per namespace for global logs (`GEOWS_<NS>`, subjects `geows.<ns>.g.<room>`),
 *   one per region for regional logs; the room id is one base64url subject token;
 * - a room log is the messages of its subject; `seq` is the stream sequence, so it is
 *   strictly increasing per room (G2) and skips the numbers of other rooms' events. (A
 *   gap-free per-room counter would need `Nats-Expected-Last-Subject-Sequence`, which
 *   clustered streams before 2.10 do not serialise: nats-server#4320.)
 * - G1: `Nats-Msg-Id` = log key + `event_id`, within the stream's duplicate window;
 * - G3: reads and tails start at `since + 1` with ordered consumers filtered on the room;
 * - a log's epoch is its KV entry (`0` until `deleteLog` rotates it, so reading or joining
 *   a room creates no entry) joined to its stream's creation time; messages carry the KV
 *   part, and a tail checks the stream's incarnation whenever it gets a new consumer, so
 *   no event of a stream created again reaches a tail of the old one.
 */
export class NatsTransport implements GeoTransport {
  readonly name = 'nats';
  readonly state: GeoStateStore;
  private readonly logger = new Logger(NatsTransport.name);
  private readonly names: NatsNames;
  private readonly epochs = new Map<string, string>();
  /** Stream creation times: part of every epoch, so a recreated stream never resumes old positions. */
  private readonly incarnations = new Map<string, string>();
  /** Logs this instance has seen non-empty: their next event cannot be the first. */
  private readonly started = new Set<string>();
  private readonly tails = new Map<string, Set<TailState>>();
  private readonly subscriptions = new Set<{ close(): void }>();
  private nats: NatsModules | undefined;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private buckets: (NatsStateBuckets & { epochs: KV }) | undefined;
  private connecting: Promise<void> | undefined;
  private connected = false;
  private closed = false;

  constructor(
    private readonly options: NatsTransportOptions,
    private readonly context: GeoTransportContext,
  ) {
    this.names = new NatsNames(options.namespace ?? 'geo');
    this.state = new NatsStateStore(() => this.requireBuckets());
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('NatsTransport: connect() after close()'));
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

  async append(log: LogRef, draft: GeoEnvelopeDraft): Promise<AppendResult> {
    const { js, nats } = this.require();
    const key = this.names.logKey(log);
    const logEpoch = await this.logEpoch(log);
    const epoch = `${logEpoch}.${await this.incarnationOf(this.names.stream(log))}`;
    const headers = nats.core.headers();
    // Only the KV part: whichever stream the message lands in is its incarnation, even if
    // this instance has not noticed yet that the stream was created again.
    headers.set(EPOCH_HEADER, logEpoch);
    if (!this.started.has(key) && !(await this.lastPosition(log))) headers.set(FIRST_HEADER, '1');
    let ack;
    try {
      ack = await js.publish(this.names.subject(log), JSON.stringify(draft), {
        msgID: `${key}:${draft.event_id}`,
        headers,
        timeout: this.timeoutMs,
      });
    } catch (error) {
      throw this.unavailable(error);
    }
    remember(this.started, key);
    if (!ack.duplicate) return { seq: ack.seq, epoch, duplicate: false };
    // The original's epoch is in its headers (it may predate a reset of the log).
    const original = await this.direct(log, { seq: ack.seq });
    return { seq: ack.seq, epoch: original?.epoch ? fullEpoch(original.epoch, epoch) : epoch, duplicate: true };
  }

  async read(log: LogRef, afterSeq: number, limit: number): Promise<ReadResult> {
    const { epoch, first, last } = await this.bounds(log);
    if (!first || !last) return { epoch, events: [], truncated: false, lastSeq: 0 };
    // Sequences between `afterSeq` and the first retained event may be other rooms' events:
    // only a first retained event that opened the log proves nothing of this room is gone.
    const truncated = afterSeq + 1 < first.seq && !first.first;
    if (afterSeq >= last.seq) return { epoch, events: [], truncated, lastSeq: last.seq };
    const events = await this.fetch(log, Math.max(afterSeq + 1, first.seq), last.seq, limit, epoch);
    return { epoch, events, truncated, lastSeq: last.seq };
  }

  async head(log: LogRef): Promise<LogHead> {
    const { epoch, first, last } = await this.bounds(log);
    const lastSeq = last?.seq ?? 0;
    return { epoch, firstSeq: first?.seq ?? lastSeq + 1, lastSeq };
  }

  async tail(
    log: LogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<Subscription> {
    const { js } = this.require();
    const key = this.names.logKey(log);
    const stream = this.names.stream(log);
    const logEpoch = await this.logEpoch(log);
    const incarnation = await this.incarnationOf(stream, true);
    const epoch = `${logEpoch}.${incarnation}`;
    const first = await this.firstPosition(log);
    if (first && afterSeq + 1 < first.seq && !first.first) {
      throw new Error(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    let delivered = afterSeq;
    let next = afterSeq + 1; // the stream sequence to resume from after any failure
    let stopped = false;
    let current: ConsumerMessages | undefined;
    /** The consumer whose stream was last checked to be this tail's incarnation. */
    let verified: string | undefined;
    const tail: TailState = {
      epoch,
      onError,
      stop: () => {
        if (stopped) return;
        stopped = true;
        void current?.close().catch(() => undefined);
        this.tails.get(key)?.delete(tail);
        this.subscriptions.delete(handle);
      },
      renew: () => void current?.close().catch(() => undefined),
    };
    const fail = (reason: string) => {
      tail.stop();
      onError?.(new Error(reason));
    };
    /** Delivers one message; false when the tail must stop. */
    const deliver = (message: JsMsg): boolean => {
      next = message.seq + 1;
      if (message.seq <= delivered) return true;
      if (!ofEpoch(message.headers?.get(EPOCH_HEADER), logEpoch, epoch)) {
        fail(`log of room "${log.room}" was reset; its epoch changed`);
        return false;
      }
      delivered = message.seq;
      onEvent({ ...message.json<GeoEnvelopeDraft>(), seq: message.seq });
      return true;
    };
    // The first consumer is created before returning, so a tail that cannot start fails
    // its caller; later failures (broker restarts, a lost consumer host, leader elections)
    // are healed here by a new ordered consumer from the next undelivered sequence.
    const open = async () => {
      const consumer = await js.consumers.get(stream, { filter_subjects: this.names.subject(log), opt_start_seq: next });
      // Short pulls: missed heartbeats are noticed within seconds.
      const messages = await consumer.consume({ max_messages: 256, expires: 4000 });
      void this.abandonWhenSilent(messages);
      return messages;
    };
    current = await open().catch((error: unknown) => Promise.reject(this.unavailable(error)));
    void (async () => {
      for (let failures = 0; !stopped; ) {
        try {
          if (!current) {
            // Reopening: a stream deleted and recreated meanwhile restarts its sequences.
            if ((await this.incarnationOf(stream, true)) !== incarnation) return fail(`the stream of room "${log.room}" was recreated; its epoch changed`);
            current = await open();
          }
          for await (const message of current) {
            failures = 0;
            if (stopped) return;
            if (message.info.consumer !== verified) {
              // A new consumer (ours, or the ordered consumer's own reset) may already read
              // a stream that was deleted and created again: check before delivering from it.
              if ((await this.incarnationOf(stream, true)) !== incarnation) return fail(`the stream of room "${log.room}" was recreated; its epoch changed`);
              verified = message.info.consumer;
            }
            if (stopped || !deliver(message)) return;
          }
        } catch (error) {
          this.logger.debug(`tail of room "${log.room}": ${(error as Error).message}; resuming after stream seq ${next - 1}`);
        }
        current = undefined;
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** failures++)));
      }
    })();
    const handle = { close: () => tail.stop() };
    this.subscriptions.add(handle);
    const forKey = this.tails.get(key) ?? new Set<TailState>();
    forKey.add(tail);
    this.tails.set(key, forKey);
    return { close: async () => tail.stop() };
  }

  /**
   * An ordered consumer lives on one server. When that server dies the client keeps
   * asking the dead consumer for its state; after two missed heartbeats the tail drops it
   * and its loop creates a new consumer from the next undelivered sequence.
   */
  private async abandonWhenSilent(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeats_missed' && status.count >= 2) {
        await messages.close().catch(() => undefined);
        return;
      }
    }
  }

  async publishEphemeral(log: LogRef, envelope: GeoEnvelopeDraft): Promise<void> {
    const { nc } = this.require();
    nc.publish(this.names.ephemeralSubject(log), JSON.stringify(envelope));
  }

  async subscribeEphemeral(log: LogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<Subscription> {
    const { nc } = this.require();
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
    const handle = { close: () => subscription.unsubscribe() };
    this.subscriptions.add(handle);
    // A round trip makes sure the server registered the interest before we say subscribed.
    await nc.flush().catch((error: unknown) => Promise.reject(this.unavailable(error)));
    return {
      close: async () => {
        this.subscriptions.delete(handle);
        handle.close();
      },
    };
  }

  async deleteLog(log: LogRef): Promise<void> {
    const { jsm } = this.require();
    const key = this.names.logKey(log);
    // New epoch first, then purge: readers skip whatever of the old epoch is still there.
    const epoch = randomUUID();
    await this.requireBuckets()
      .epochs.put(key, epoch)
      .catch((error: unknown) => {
        throw this.unavailable(error);
      });
    remember(this.epochs, key, epoch);
    this.started.delete(key);
    await jsm.streams.purge(this.names.stream(log), { filter: this.names.subject(log) }).catch((error: unknown) => {
      throw this.unavailable(error);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    for (const subscription of [...this.subscriptions]) subscription.close();
    this.subscriptions.clear();
    await this.connecting?.catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
  }

  // ---- connection and set-up -----------------------------------------------------------

  private get timeoutMs(): number {
    return this.options.requestTimeoutMs ?? 5000;
  }

  private async open(): Promise<void> {
    this.nats = await loadNats();
    const { servers } = this.options;
    const nc = await this.nats.core
      .connect({
        servers: typeof servers === 'function' ? servers(this.context.region) : servers,
        name: `geo-ws ${this.context.region}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 5000,
        ...this.options.connection,
      })
      .catch((error: unknown) => {
        throw new GeoTransportUnavailableError(`cannot reach NATS: ${(error as Error).message}`, { cause: error });
      });
    this.nc = nc;
    this.connected = true;
    void this.watchStatus(nc);
    this.js = this.nats.jetstream.jetstream(nc, { timeout: this.timeoutMs });
    this.jsm = await this.nats.jetstream.jetstreamManager(nc, { timeout: this.timeoutMs });
    if (this.options.setup === 'verify') {
      await this.jsm.streams.info(this.names.globalStream).catch((error: unknown) => {
        throw new Error(`JetStream stream ${this.names.globalStream} does not exist (namespace "${this.names.namespace}"): start a geo-ws app first`, { cause: error });
      });
    } else {
      const regionalCluster = this.options.regionalCluster?.(this.context.region) ?? (this.options.homeCluster ? this.context.region : undefined);
      // A cluster that is still forming answers "no suitable peers for placement" for a
      // few seconds: retry set-up for a while before failing the boot.
      await this.retryingSetup(async () => {
        await this.ensureStream(this.names.globalStream, this.names.globalSubjects(), this.options.homeCluster);
        await this.ensureStream(this.names.regionalStream(this.context.region), this.names.regionalSubjects(this.context.region), regionalCluster);
      });
    }
    this.buckets = await this.openBuckets();
    await this.watchEpochs(this.buckets.epochs);
  }

  private async retryingSetup(setup: () => Promise<void>, forMs = 20_000): Promise<void> {
    const deadline = Date.now() + forMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await setup();
      } catch (error) {
        if (Date.now() > deadline || this.closed) throw error;
        this.logger.warn(`JetStream set-up failed, retrying: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 200 * 2 ** attempt)));
      }
    }
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
        for (const tails of this.tails.values()) for (const tail of tails) tail.renew();
      }
    }
  }

  /** Creates the stream, or brings an existing one to the configured limits. Idempotent. */
  private async ensureStream(name: string, subjects: string, cluster: string | undefined): Promise<void> {
    const jsm = this.jsm!;
    const config: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [subjects],
      // Retention per room by count, and by age for the whole stream.
      max_msgs_per_subject: this.context.retention.maxEvents,
      max_age: this.context.retention.maxAgeMs * 1_000_000,
      duplicate_window: this.context.dedupWindowMs * 1_000_000,
      allow_direct: true,
      num_replicas: this.options.replicas ?? 1,
      storage: (this.options.storage ?? 'file') as StreamConfig['storage'],
      discard: 'old' as StreamConfig['discard'],
      ...(cluster ? { placement: { cluster, tags: [] } } : {}),
    };
    try {
      const info = await jsm.streams.info(name).catch((error: unknown) => {
        if (this.isApiError(error, STREAM_NOT_FOUND)) return undefined;
        throw error;
      });
      if (!info) {
        await jsm.streams.add(config).catch(async (error: unknown) => {
          // Another region created it at the same moment.
          if (!this.isApiError(error, STREAM_NAME_IN_USE)) throw error;
        });
        return;
      }
      const current = info.config;
      if (
        current.max_msgs_per_subject !== config.max_msgs_per_subject ||
        current.max_age !== config.max_age ||
        current.duplicate_window !== config.duplicate_window ||
        !current.subjects?.includes(subjects)
      ) {
        await jsm.streams.update(name, { ...current, ...config, subjects: [...new Set([...(current.subjects ?? []), subjects])] });
      }
    } catch (error) {
      throw new Error(`cannot set up JetStream stream ${name}: ${(error as Error).message}`, { cause: error });
    }
  }

  private async openBuckets(): Promise<NatsStateBuckets & { epochs: KV }> {
    const kvm = new this.nats!.kv.Kvm(this.js!);
    const ttl = this.options.stateTtlMs ?? {};
    const common = {
      history: 1,
      replicas: this.options.replicas ?? 1,
      storage: (this.options.storage ?? 'file') as 'file',
      timeout: this.timeoutMs,
      ...(this.options.homeCluster ? { placement: { cluster: this.options.homeCluster, tags: [] } } : {}),
    };
    const open = (name: string, bucketTtl?: number) =>
      (this.options.setup === 'verify'
        ? kvm.open(name, { timeout: this.timeoutMs })
        : kvm.create(name, { ...common, ...(bucketTtl ? { ttl: bucketTtl } : {}) })
      ).catch((error: unknown) => {
        throw new Error(`cannot set up NATS KV bucket ${name}: ${(error as Error).message}`, { cause: error });
      });
    const [epochs, sessions, revocations, presence] = await Promise.all([
      open(this.names.kv.epochs),
      open(this.names.kv.sessions, ttl.sessions ?? DAY),
      open(this.names.kv.revocations, ttl.revocations ?? 7 * DAY),
      open(this.names.kv.presence, ttl.presence ?? 5 * 60 * 1000),
    ]);
    return { epochs, sessions, revocations, presence };
  }

  /** Keeps the epoch cache current and tells tails of a log that was reset elsewhere. */
  private async watchEpochs(bucket: KV): Promise<void> {
    const watcher = await bucket.watch({ include: 'updates' as never });
    this.subscriptions.add({ close: () => watcher.stop() });
    void (async () => {
      for await (const entry of watcher) {
        if (entry.operation !== 'PUT') continue;
        const epoch = entry.string();
        remember(this.epochs, entry.key, epoch);
        this.started.delete(entry.key);
        for (const tail of [...(this.tails.get(entry.key) ?? [])]) {
          if (!tail.epoch.startsWith(`${epoch}.`)) {
            tail.stop();
            tail.onError?.(new Error('the room log was reset; its epoch changed'));
          }
        }
      }
    })().catch(() => undefined);
  }

  private require(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; nats: NatsModules } {
    if (!this.nc || !this.js || !this.jsm || !this.nats || this.closed) {
      throw new GeoTransportUnavailableError('the NATS transport is not connected');
    }
    if (!this.connected) throw new GeoTransportUnavailableError('the connection to NATS is down; retry');
    return { nc: this.nc, js: this.js, jsm: this.jsm, nats: this.nats };
  }

  private requireBuckets(): NatsStateBuckets & { epochs: KV } {
    this.require();
    if (!this.buckets) throw new GeoTransportUnavailableError('the NATS transport is not connected');
    return this.buckets;
  }

  // ---- epochs ------------------------------------------------------------------------

  /** A stream's creation time: cached for appends; `fresh` asks the server (reads, tails). */
  private async incarnationOf(stream: string, fresh = false): Promise<string> {
    const cached = this.incarnations.get(stream);
    if (cached && !fresh) return cached;
    try {
      const info = await this.require().jsm.streams.info(stream);
      const incarnation = Date.parse(info.created).toString(36);
      this.incarnations.set(stream, incarnation);
      return incarnation;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /**
   * The log's own epoch: its KV entry, written only by `deleteLog`, or `0` for a log that
   * was never reset. Nothing is written for a log that is only read or appended to, so
   * clients joining rooms cannot grow the bucket, and the epoch a joiner of an empty room
   * gets is the one its first event is appended under. The watcher keeps the cache current.
   */
  private async logEpoch(log: LogRef): Promise<string> {
    const key = this.names.logKey(log);
    const cached = this.epochs.get(key);
    if (cached) return cached;
    const { epochs } = this.requireBuckets();
    try {
      const entry = await epochs.get(key);
      const epoch = entry?.operation === 'PUT' && entry.length > 0 ? entry.string() : INITIAL_LOG_EPOCH;
      // A rotation the watcher delivered meanwhile is newer than what we read.
      if (!this.epochs.has(key)) remember(this.epochs, key, epoch);
      return this.epochs.get(key) ?? epoch;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  // ---- positions ---------------------------------------------------------------------

  private async direct(log: LogRef, query: Parameters<JetStreamManager['direct']['getMessage']>[1]): Promise<LogPosition | undefined> {
    const { jsm } = this.require();
    let message: StoredMsg | null;
    try {
      message = await jsm.direct.getMessage(this.names.stream(log), query);
    } catch (error) {
      throw this.unavailable(error);
    }
    if (!message) return undefined;
    remember(this.started, this.names.logKey(log));
    return { seq: message.seq, epoch: message.header.get(EPOCH_HEADER), first: message.header.get(FIRST_HEADER) === '1' };
  }

  /**
   * A log's epoch and its first and last stored events, read together. The stream's
   * incarnation is asked afresh (in parallel, so at no cost in latency): positions read
   * from a stream created again must never be reported under the old one's epoch.
   */
  private async bounds(log: LogRef): Promise<{ epoch: string; first?: LogPosition; last?: LogPosition }> {
    this.require();
    const [logEpoch, incarnation, first, last] = await Promise.all([
      this.logEpoch(log),
      this.incarnationOf(this.names.stream(log), true),
      this.firstPosition(log),
      this.lastPosition(log),
    ]);
    return { epoch: `${logEpoch}.${incarnation}`, first, last };
  }

  private lastPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { last_by_subj: this.names.subject(log) });
  }

  private firstPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { seq: 1, next_by_subj: this.names.subject(log) });
  }

  /**
   * Up to `limit` events of a log from stream sequence `from` to `last`: one short-lived
   * ordered consumer, or, when no consumer can be created (a stream peer is down and the
   * placement picked it), direct gets, which any replica answers.
   */
  private async fetch(log: LogRef, from: number, last: number, limit: number, epoch: string): Promise<GeoLoggedEnvelope[]> {
    const { js } = this.require();
    const events: GeoLoggedEnvelope[] = [];
    const logEpoch = epoch.slice(0, epoch.lastIndexOf('.'));
    const take = (message: { seq: number; headers?: { get(name: string): string }; json<T>(): T }): boolean => {
      // Events left over from before a reset (another epoch) are not part of this log.
      if (ofEpoch(message.headers?.get(EPOCH_HEADER), logEpoch, epoch)) events.push({ ...message.json<GeoEnvelopeDraft>(), seq: message.seq });
      return events.length < limit && message.seq < last;
    };
    let consumer;
    try {
      consumer = await js.consumers.get(this.names.stream(log), { filter_subjects: this.names.subject(log), opt_start_seq: from });
    } catch (error) {
      this.logger.debug(`read of room "${log.room}" by direct gets: ${(error as Error).message}`);
      return this.fetchDirect(log, from, take, events);
    }
    try {
      const messages = await consumer.fetch({ max_messages: limit, expires: this.timeoutMs });
      for await (const message of messages) if (!take(message)) break;
    } catch (error) {
      throw this.unavailable(error);
    } finally {
      void consumer.delete().catch(() => undefined);
    }
    return events;
  }

  private async fetchDirect(
    log: LogRef,
    from: number,
    take: (message: { seq: number; headers?: { get(name: string): string }; json<T>(): T }) => boolean,
    events: GeoLoggedEnvelope[],
  ): Promise<GeoLoggedEnvelope[]> {
    const { jsm } = this.require();
    for (let next = from; ; ) {
      const message = await jsm.direct
        .getMessage(this.names.stream(log), { seq: next, next_by_subj: this.names.subject(log) })
        .catch((error: unknown) => Promise.reject(this.unavailable(error)));
      if (!message || !take({ seq: message.seq, headers: message.header, json: () => message.json() })) return events;
      next = message.seq + 1;
    }
  }

  // ---- errors ------------------------------------------------------------------------

  private isApiError(error: unknown, code: number): boolean {
    return !!this.nats && error instanceof this.nats.jetstream.JetStreamApiError && error.code === code;
  }

  /** Broker API refusals stay errors; anything about reaching the broker is retryable. */
  private unavailable(error: unknown): Error {
    if (error instanceof GeoTransportUnavailableError) return error;
    if (this.nats && error instanceof this.nats.jetstream.JetStreamApiError) return error;
    return new GeoTransportUnavailableError(`NATS: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

/** Whether a message's epoch header is the log's: its own epoch, or the full epoch older versions wrote. */
function ofEpoch(header: string | undefined, logEpoch: string, epoch: string): boolean {
  return header === logEpoch || header === epoch;
}

/** A full epoch from a message's header and the full epoch of the stream it is in. */
function fullEpoch(header: string, current: string): string {
  return header.includes('.') ? header : `${header}.${current.slice(current.lastIndexOf('.') + 1)}`;
}

/** Adds to a bounded cache, dropping its oldest entry past {@link CACHE_LIMIT}. */
function remember<K, V>(cache: Map<K, V> | Set<K>, key: K, value?: V): void {
  cache.delete(key);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as K);
  if (cache instanceof Map) cache.set(key, value as V);
  else cache.add(key);
}
