import { Logger } from '@nestjs/common';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, StoredMsg, StreamConfig } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import {
  GeoTransportUnavailableError,
  type AppendResult,
  type GeoTransport,
  type GeoTransportContext,
  type GeoTransportFactory,
  type LogHead,
  type ReadResult,
  type Subscription,
} from '../geo-transport.interface.js';
import type { GeoStateStore } from '../geo-state-store.interface.js';
import type { LogRef } from '../log-ref.js';
import { loadNats, type NatsModules } from './load-nats.js';
import { NatsNames } from './nats-names.js';
import { NatsStateStore, type NatsStateBuckets } from './nats-state.store.js';
import type { NatsTransportOptions } from './nats-transport.options.js';
import { PositionIndex, type LogPosition } from './position-index.js';

const SEQ_HEADER = 'Geo-Seq';
const EPOCH_HEADER = 'Geo-Epoch';
const WRONG_LAST_SEQUENCE = 10071;
const MAX_APPEND_ATTEMPTS = 50;
const DAY = 24 * 60 * 60 * 1000;

/**
 * The room log on NATS JetStream.
 * @example transport: natsTransport({ servers: (region) => `nats://nats-${region}:4222`, homeCluster: 'eu' })
 */
export function natsTransport(options: NatsTransportOptions): GeoTransportFactory {
  return (context) => new NatsTransport(options, context);
}

/** An epoch as stored in the epochs bucket. `used` turns true after the log's first event. */
interface EpochEntry {
  epoch: string;
  used: boolean;
  revision: number;
}

interface TailState {
  epoch: string;
  stop(): void;
  onError?: (error: Error) => void;
}

/**
 * Mapping (see the README's NATS section):
 * - one stream per namespace for global logs (`GEOWS_<NS>`, subjects `geows.<ns>.g.<room>`),
 *   one per region for regional logs; the room id is one base64url subject token;
 * - each room log is the messages of its subject; a message holds the whole envelope and
 *   the headers `Geo-Seq` (room seq) and `Geo-Epoch`;
 * - G1: `Nats-Msg-Id` = log key + `event_id`, with the stream's duplicate window;
 * - G2: the room seq is gap-free: an append claims `last + 1` with
 *   `Nats-Expected-Last-Subject-Sequence`, so two regions can never take the same seq;
 * - G3: reads and tails start at the stream position of a room seq (a cache of recent
 *   positions, else a binary search with direct gets), tails are ordered consumers;
 * - epochs live in a KV bucket; deleting a log rotates it.
 */
export class NatsTransport implements GeoTransport {
  readonly name = 'nats';
  readonly state: GeoStateStore;
  private readonly logger = new Logger('GeoWs');
  private readonly names: NatsNames;
  private readonly positions = new PositionIndex();
  private readonly epochs = new Map<string, EpochEntry>();
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
    const subject = this.names.subject(log);
    const stream = this.names.stream(log);
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      const fresh = attempt > 0;
      const epoch = await this.epochOf(log, fresh);
      let last = fresh ? undefined : this.positions.last(key);
      if (!last || last.epoch !== epoch.epoch) last = await this.lastPosition(log);
      if (last && last.epoch !== epoch.epoch) continue; // a reset is in progress: its purge will empty the subject
      if (!last && epoch.used) {
        // Used before but empty now: its history expired. Continuing at seq 1 in the same
        // epoch would let a client at seq 50 skip new events, so start a new epoch.
        await this.rotateEpoch(log, epoch);
        continue;
      }
      const seq = (last?.roomSeq ?? 0) + 1;
      const headers = nats.core.headers();
      headers.set(SEQ_HEADER, String(seq));
      headers.set(EPOCH_HEADER, epoch.epoch);
      try {
        const ack = await js.publish(subject, JSON.stringify({ ...draft, seq }), {
          msgID: `${key}:${draft.event_id}`,
          expect: { lastSubjectSequence: last?.streamSeq ?? 0 },
          headers,
          timeout: this.timeoutMs,
        });
        if (ack.duplicate) return await this.original(stream, ack.seq, epoch.epoch);
        this.positions.record(key, { roomSeq: seq, streamSeq: ack.seq, epoch: epoch.epoch });
        if (!epoch.used) await this.markUsed(log, epoch);
        return { seq, epoch: epoch.epoch, duplicate: false };
      } catch (error) {
        if (this.isApiError(error, WRONG_LAST_SEQUENCE)) {
          this.positions.forgetLast(key); // another writer took this seq: read the log again
          continue;
        }
        throw this.unavailable(error);
      }
    }
    throw new GeoTransportUnavailableError(`room "${log.room}" is too contended: no seq after ${MAX_APPEND_ATTEMPTS} attempts; retry`);
  }

  async read(log: LogRef, afterSeq: number, limit: number): Promise<ReadResult> {
    this.require();
    const epoch = (await this.epochOf(log)).epoch;
    const [first, last] = await Promise.all([this.firstPosition(log), this.lastPosition(log)]);
    if (!first || !last) return { epoch, events: [], truncated: false, lastSeq: 0 };
    const start = Math.max(afterSeq + 1, first.roomSeq);
    const truncated = afterSeq + 1 < first.roomSeq;
    if (start > last.roomSeq) return { epoch, events: [], truncated, lastSeq: last.roomSeq };
    const count = Math.min(limit, last.roomSeq - start + 1);
    const from = await this.streamSeqOf(log, start, first, last);
    const events = await this.fetch(log, from, count, epoch);
    return { epoch, events, truncated, lastSeq: last.roomSeq };
  }

  async head(log: LogRef): Promise<LogHead> {
    this.require();
    const epoch = (await this.epochOf(log)).epoch;
    const [first, last] = await Promise.all([this.firstPosition(log), this.lastPosition(log)]);
    const lastSeq = last?.roomSeq ?? 0;
    return { epoch, firstSeq: first?.roomSeq ?? lastSeq + 1, lastSeq };
  }

  async tail(
    log: LogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<Subscription> {
    const { js, jsm } = this.require();
    const key = this.names.logKey(log);
    const stream = this.names.stream(log);
    const epoch = (await this.epochOf(log)).epoch;
    const [first, last] = await Promise.all([this.firstPosition(log), this.lastPosition(log)]);
    let start: number;
    try {
      if (!first || !last) start = (await jsm.streams.info(stream)).state.last_seq + 1;
      else if (afterSeq >= last.roomSeq) start = last.streamSeq + 1;
      else if (afterSeq + 1 < first.roomSeq) {
        throw new Error(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
      } else start = await this.streamSeqOf(log, afterSeq + 1, first, last);
    } catch (error) {
      throw error instanceof Error && error.message.startsWith('cannot tail') ? error : this.unavailable(error);
    }
    const consumer = await js.consumers
      .get(stream, { filter_subjects: this.names.subject(log), opt_start_seq: start })
      .catch((error: unknown) => Promise.reject(this.unavailable(error)));
    const messages: ConsumerMessages = await consumer.consume({ max_messages: 256 });
    let expected = afterSeq + 1;
    let stopped = false;
    const tail: TailState = {
      epoch,
      onError,
      stop: () => {
        if (stopped) return;
        stopped = true;
        void messages.close().catch(() => undefined);
        this.tails.get(key)?.delete(tail);
        this.subscriptions.delete(handle);
      },
    };
    const fail = (reason: string) => {
      tail.stop();
      onError?.(new Error(reason));
    };
    void (async () => {
      for await (const message of messages) {
        if (stopped) break;
        const position = this.positionOf(message.headers, message.seq);
        if (!position) continue;
        this.positions.record(key, position);
        if (position.epoch !== epoch) return fail(`log of room "${log.room}" was reset; its epoch changed`);
        if (position.roomSeq < expected) continue;
        if (position.roomSeq > expected) return fail(`tail of room "${log.room}" expected seq ${expected}, got ${position.roomSeq}`);
        expected++;
        onEvent(message.json<GeoLoggedEnvelope>());
      }
    })().catch((error: unknown) => fail(`tail of room "${log.room}" stopped: ${(error as Error).message}`));
    const handle = { close: () => tail.stop() };
    this.subscriptions.add(handle);
    const forKey = this.tails.get(key) ?? new Set<TailState>();
    forKey.add(tail);
    this.tails.set(key, forKey);
    return { close: async () => tail.stop() };
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
    // New epoch first, then purge: a writer that races the reset finds the subject holding
    // another epoch's events and waits for the purge, instead of continuing old numbering.
    await this.putEpoch(log, { epoch: randomUUID(), used: false });
    await jsm.streams.purge(this.names.stream(log), { filter: this.names.subject(log) }).catch((error: unknown) => {
      throw this.unavailable(error);
    });
    this.positions.forget(key);
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
      await this.ensureStream(this.names.globalStream, this.names.globalSubjects(), this.options.homeCluster);
      const regionalCluster = this.options.regionalCluster?.(this.context.region) ?? (this.options.homeCluster ? this.context.region : undefined);
      await this.ensureStream(this.names.regionalStream(this.context.region), this.names.regionalSubjects(this.context.region), regionalCluster);
    }
    this.buckets = await this.openBuckets();
    await this.watchEpochs(this.buckets.epochs);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.logger.warn(`NATS connection of region "${this.context.region}" lost; reconnecting`);
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.log(`NATS connection of region "${this.context.region}" restored`);
      }
    }
  }

  /** Creates the stream, or brings an existing one to the configured limits. Idempotent. */
  private async ensureStream(name: string, subjects: string, cluster: string | undefined): Promise<void> {
    const jsm = this.jsm!;
    const config: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [subjects],
      // Retention by count per room. No max_age: an emptied subject would lose the room's
      // numbering; expired rooms get a new epoch instead (see append).
      max_msgs_per_subject: this.context.retention.maxEvents,
      duplicate_window: this.context.dedupWindowMs * 1_000_000,
      allow_direct: true,
      num_replicas: this.options.replicas ?? 1,
      storage: (this.options.storage ?? 'file') as StreamConfig['storage'],
      discard: 'old' as StreamConfig['discard'],
      ...(cluster ? { placement: { cluster, tags: [] } } : {}),
    };
    try {
      const info = await jsm.streams.info(name).catch((error: unknown) => {
        if (this.isApiError(error, 10059)) return undefined;
        throw error;
      });
      if (!info) {
        await jsm.streams.add(config).catch(async (error: unknown) => {
          // Another region created it at the same moment.
          if (!this.isApiError(error, 10058)) throw error;
        });
        return;
      }
      const current = info.config;
      if (
        current.max_msgs_per_subject !== config.max_msgs_per_subject ||
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
        const stored = entry.json<{ epoch: string; used: boolean }>();
        this.epochs.set(entry.key, { ...stored, revision: entry.revision });
        for (const tail of [...(this.tails.get(entry.key) ?? [])]) {
          if (tail.epoch !== stored.epoch) {
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

  private async epochOf(log: LogRef, fresh = false): Promise<EpochEntry> {
    const key = this.names.logKey(log);
    const cached = this.epochs.get(key);
    if (cached && !fresh) return cached;
    const { epochs } = this.requireBuckets();
    try {
      const entry = await epochs.get(key);
      if (entry && entry.operation === 'PUT') {
        const stored = { ...entry.json<{ epoch: string; used: boolean }>(), revision: entry.revision };
        this.epochs.set(key, stored);
        return stored;
      }
      const created = { epoch: randomUUID(), used: false };
      const revision = await epochs.create(key, JSON.stringify(created)).catch(() => undefined);
      if (revision === undefined) return this.epochOf(log, true); // another region created it first
      const stored = { ...created, revision };
      this.epochs.set(key, stored);
      return stored;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private async markUsed(log: LogRef, epoch: EpochEntry): Promise<void> {
    const key = this.names.logKey(log);
    const used = { epoch: epoch.epoch, used: true };
    // Best effort: if another writer changed the entry, it knows better.
    const revision = await this.requireBuckets()
      .epochs.update(key, JSON.stringify(used), epoch.revision)
      .catch(() => undefined);
    if (revision !== undefined) this.epochs.set(key, { ...used, revision });
  }

  private async rotateEpoch(log: LogRef, epoch: EpochEntry): Promise<void> {
    const key = this.names.logKey(log);
    const next = { epoch: randomUUID(), used: false };
    const revision = await this.requireBuckets()
      .epochs.update(key, JSON.stringify(next), epoch.revision)
      .catch(() => undefined); // lost the race: the next attempt reads the winner's epoch
    if (revision !== undefined) this.epochs.set(key, { ...next, revision });
    else this.epochs.delete(key);
  }

  private async putEpoch(log: LogRef, value: { epoch: string; used: boolean }): Promise<void> {
    const key = this.names.logKey(log);
    const revision = await this.requireBuckets()
      .epochs.put(key, JSON.stringify(value))
      .catch((error: unknown) => {
        throw this.unavailable(error);
      });
    this.epochs.set(key, { ...value, revision });
  }

  // ---- positions ---------------------------------------------------------------------

  private positionOf(headers: { get(name: string): string } | undefined, streamSeq: number): LogPosition | undefined {
    const roomSeq = Number(headers?.get(SEQ_HEADER));
    const epoch = headers?.get(EPOCH_HEADER);
    return Number.isSafeInteger(roomSeq) && roomSeq > 0 && epoch ? { roomSeq, streamSeq, epoch } : undefined;
  }

  private async direct(log: LogRef, query: Parameters<JetStreamManager['direct']['getMessage']>[1]): Promise<LogPosition | undefined> {
    const { jsm } = this.require();
    let message: StoredMsg | null;
    try {
      message = await jsm.direct.getMessage(this.names.stream(log), query);
    } catch (error) {
      throw this.unavailable(error);
    }
    if (!message) return undefined;
    const position = this.positionOf(message.header, message.seq);
    if (position) this.positions.record(this.names.logKey(log), position);
    return position;
  }

  private lastPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { last_by_subj: this.names.subject(log) });
  }

  private firstPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { seq: 1, next_by_subj: this.names.subject(log) });
  }

  /**
   * The stream sequence of room seq `target`, known to lie between `first` and `last`:
   * from the cache of recent positions, else by bisecting stream sequences with direct
   * gets (each answers the first message of the room at or after a stream sequence).
   */
  private async streamSeqOf(log: LogRef, target: number, first: LogPosition, last: LogPosition): Promise<number> {
    if (target === first.roomSeq) return first.streamSeq;
    if (target === last.roomSeq) return last.streamSeq;
    const cached = this.positions.streamSeqOf(this.names.logKey(log), target, last.epoch);
    if (cached !== undefined) return cached;
    let low = first; // room seq below the target
    let high = last.streamSeq; // a stream sequence above the target's
    for (let probe = 0; probe < 64; probe++) {
      const middle = Math.max(low.streamSeq + 1, Math.floor((low.streamSeq + high) / 2));
      const found = await this.direct(log, { seq: middle, next_by_subj: this.names.subject(log) });
      if (!found) break;
      if (found.roomSeq === target) return found.streamSeq;
      if (found.roomSeq < target) low = found;
      else high = middle;
      if (high <= low.streamSeq + 1) {
        const next = await this.direct(log, { seq: low.streamSeq + 1, next_by_subj: this.names.subject(log) });
        if (next?.roomSeq === target) return next.streamSeq;
        break;
      }
    }
    throw new Error(`room "${log.room}": seq ${target} not found between ${first.roomSeq} and ${last.roomSeq}`);
  }

  /** Reads `count` events of a log from a stream sequence with a short-lived ordered consumer. */
  private async fetch(log: LogRef, from: number, count: number, epoch: string): Promise<GeoLoggedEnvelope[]> {
    const { js } = this.require();
    const key = this.names.logKey(log);
    const events: GeoLoggedEnvelope[] = [];
    try {
      const consumer = await js.consumers.get(this.names.stream(log), { filter_subjects: this.names.subject(log), opt_start_seq: from });
      try {
        const messages = await consumer.fetch({ max_messages: count, expires: this.timeoutMs });
        for await (const message of messages) {
          const position = this.positionOf(message.headers, message.seq);
          if (position?.epoch === epoch) {
            this.positions.record(key, position);
            events.push(message.json<GeoLoggedEnvelope>());
          }
          if (events.length >= count) break;
        }
      } finally {
        void consumer.delete().catch(() => undefined);
      }
    } catch (error) {
      throw this.unavailable(error);
    }
    return events;
  }

  private async original(stream: string, streamSeq: number, epoch: string): Promise<AppendResult> {
    const message = await this.jsm!.direct.getMessage(stream, { seq: streamSeq }).catch((error: unknown) => {
      throw this.unavailable(error);
    });
    const position = message ? this.positionOf(message.header, message.seq) : undefined;
    // The original may be gone with a deleted log; it was stored once all the same.
    return { seq: position?.roomSeq ?? 0, epoch: position?.epoch ?? epoch, duplicate: true };
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
