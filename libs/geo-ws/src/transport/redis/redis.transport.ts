import { Logger } from '@nestjs/common';
import type { ClusterOptions, Redis, RedisOptions } from 'ioredis';
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
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoStateStore } from '../geo-state-store.interface.js';
import type { LogRef } from '../log-ref.js';
import { loadRedis } from './load-redis.js';
import { unavailable } from './redis-errors.js';
import { RedisKeys } from './redis-keys.js';
import { RedisDataset, replicationIdOf, type DatasetRedis } from './redis-dataset.js';
import { APPEND_SCRIPT, CHECK_SCRIPT, EPOCH_SCRIPT, RESET_SCRIPT, VALIDATE_SCRIPT } from './redis-scripts.js';
import { RedisStateStore } from './redis-state.store.js';
import {
  logEpochOf,
  parseEntries,
  RedisStreamReader,
  type LiveReader,
  type ReadSource,
  type StreamEntries,
  type StreamReply,
} from './redis-stream.reader.js';
import { RedisWakeReader } from './redis-wake.reader.js';
import { EphemeralChannels } from './redis-ephemeral.js';
import { StreamTail } from './redis-tails.js';
import type { RedisEndpoint, RedisTransportOptions } from './redis-transport.options.js';

/** The commands the scripts add to a connection. */
interface ScriptedRedis extends DatasetRedis {
  /** KEYS: stream, meta, dedup key (Cluster mode); `geoAppendChecked` adds the dataset hash. */
  geoAppend(...keysAndArgs: (string | number)[]): Promise<AppendReply>;
  geoAppendChecked(...keysAndArgs: (string | number)[]): Promise<AppendReply>;
  geoEpoch(meta: string, candidate: string, ttlMs: number): Promise<string>;
  geoCheck(meta: string, ttlMs: number): Promise<[string | null, string | null]>;
  geoReset(stream: string, meta: string, epoch: string, ttlMs: number): Promise<number>;
}

/** `APPEND_SCRIPT`'s reply: seq, status (0 stored, 1 duplicate, 2 check the dataset first), log epoch, dataset id, writes, replication id. */
type AppendReply = [number, number, string, string, number, string];

const HEALTH_INTERVAL_MS = 1000;
const EPOCH_CHECK_INTERVAL_MS = 2000;
/** The live reader's `XREAD`: entries per stream per call, and how long it blocks when nothing comes. */
const LIVE_READ_COUNT = '500';
const LIVE_READ_BLOCK_MS = '2000';
/** Default life of the epoch of a log without events after its last read or live check. */
const EMPTY_LOG_TTL_MS = 60 * 60 * 1000;

/**
 * The room log on Redis Streams: one stream per room log on the primary (home region),
 * read by each region from its own replica.
 * @example transport: redisTransport({ primary: 'redis://redis-eu:6379', replica: (region) => `redis://redis-${region}:6379` })
 */
export function redisTransport(options: RedisTransportOptions): GeoTransportFactory {
  return (context) => new RedisTransport(options, context);
}

/**
 * Mapping (see docs/TRANSPORTS.md):
 * - a log is a Stream `geows:{<ns>:g:<room>}:log` whose entry ids are `<seq>-0`, plus a hash
 *   `…:meta` with its `epoch` and last `seq`; room ids are base64url inside a hash tag;
 * - G1 + G2: one Lua script on the primary checks the dedup key (`SET PX`), increments the
 *   counter and `XADD`s, so seq is gap-free and a retry is stored once;
 * - G3: replays are `XRANGE` from `since + 1`; live tails are one blocking `XREAD` per node
 *   over all of its rooms, on the region's replica, on the primary while the replica is
 *   down or lagging;
 * - the epoch is the log's random epoch joined to the dataset's id ({@link RedisDataset}),
 *   which changes only when events may be gone: a new, flushed or replaced dataset, or a
 *   restart or failover that lost writes some process saw (replication is asynchronous).
 *   A restart with the data intact keeps every epoch; resumes across a loss say
 *   `recovered: false`;
 * - every entry carries its log's epoch, which the live reader checks, and it delivers
 *   nothing read under a replication id the dataset was not checked under: a tail fails
 *   before any event of a new incarnation reaches it;
 * - periodic checks cost a fixed number of commands whatever the number of rooms: the
 *   dataset hash (id, write and reset counts) and the replication id, every 2 s; a log's
 *   own epoch is compared only after a reset somewhere, and a tailed log's meta is
 *   extended once per quarter to half of `emptyLogTtlMs`;
 * - no key is permanent, since any client can create logs by joining rooms: a log's meta
 *   hash lives `emptyLogTtlMs` after its last read or live check, and, once it has events,
 *   `maxAgeMs + emptyLogTtlMs` after its last append; its stream `maxAgeMs` (retention).
 */
export class RedisTransport implements GeoTransport {
  readonly name = 'redis';
  readonly contiguousSeq = true;
  readonly state: GeoStateStore;
  private readonly logger = new Logger(RedisTransport.name);
  private readonly keys: RedisKeys;
  private reader: LiveReader;
  private readonly ephemeral = new EphemeralChannels(() => this.requireSubscriber());
  private readonly clientIds = new WeakMap<Redis, number>();
  private primary: ScriptedRedis | undefined;
  private replica: Redis | undefined;
  private primaryBlocking: Redis | undefined;
  private replicaBlocking: Redis | undefined;
  private subscriber: Redis | undefined;
  /** Cluster mode: the live reader's wake-up subscriber. */
  private wakeSubscriber: Redis | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** Every connection opened, so close() can end them even in the middle of connect(). */
  private readonly clients = new Set<Redis>();
  private connecting: Promise<void> | undefined;
  private replicaHealthy = false;
  private readonly dataset: RedisDataset;
  /** The reset count at the last check: logs' own epochs are compared only when it moved. */
  private resets: number | undefined;
  /** Cluster mode: each master's replication id at the last check (a failover changes one). */
  private masterReplicationIds = new Map<string, string>();
  private readonly emptyLogTtlMs: number;
  private closed = false;

  constructor(
    private readonly options: RedisTransportOptions,
    private readonly context: GeoTransportContext,
  ) {
    if (!options.primary === !options.cluster) {
      throw new GeoConfigError(
        'redisTransport: set exactly one of primary (a URL, ioredis options or Sentinel) and cluster (startup nodes)',
      );
    }
    if (options.cluster && options.replica) {
      throw new GeoConfigError(
        'redisTransport: remove replica, which does not apply to cluster mode (Redis Cluster reads from its own replicas)',
      );
    }
    this.keys = new RedisKeys(options.namespace ?? 'geo');
    this.emptyLogTtlMs = options.emptyLogTtlMs ?? EMPTY_LOG_TTL_MS;
    // Live checks extend a meta once half of this is left: that half must span several checks.
    if (!Number.isInteger(this.emptyLogTtlMs) || this.emptyLogTtlMs < 5 * EPOCH_CHECK_INTERVAL_MS) {
      throw new GeoConfigError(
        `redisTransport: emptyLogTtlMs must be an integer of at least ${5 * EPOCH_CHECK_INTERVAL_MS}, got ${String(options.emptyLogTtlMs)}`,
      );
    }
    this.state = new RedisStateStore(
      () => this.requirePrimary(),
      this.keys,
      () => this.requireSubscriber(),
    );
    this.dataset = new RedisDataset(
      this.keys.dataset(),
      this.clusterMode,
      () => this.requirePrimary(),
      (reason) => {
        for (const tail of this.reader.all()) tail.fail(reason);
      },
    );
    this.reader = new RedisStreamReader(() => this.readSource());
  }

  private get clusterMode(): boolean {
    return this.options.cluster !== undefined;
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new GeoTransportUnavailableError('the Redis transport was closed; connect a new one'));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      this.disconnectAll();
      // Options the transport cannot work with stay configuration errors; the rest is about reaching Redis.
      throw error instanceof GeoConfigError ? error : unavailable(error);
    });
    return this.connecting;
  }

  isReady(): boolean {
    return !this.closed && this.primary?.status === 'ready';
  }

  async append(log: LogRef, draft: GeoEnvelopeDraft): Promise<AppendResult> {
    const { dedupWindowMs, retention } = this.context;
    const stream = this.keys.stream(log);
    const keys = [stream, this.keys.meta(log), this.keys.eventId(log, draft.event_id)];
    const args = [
      JSON.stringify(draft),
      dedupWindowMs,
      retention.maxEvents,
      randomUUID(),
      retention.maxAgeMs,
      Date.now(),
      this.clusterMode ? this.keys.wake(stream) : '',
      retention.maxAgeMs + this.emptyLogTtlMs,
    ];
    // A refusal (status 2) means the dataset is unchecked since a restart or failover: check it, then write.
    for (let attempt = 0; attempt < 3; attempt++) {
      const primary = this.requirePrimary();
      let reply: AppendReply;
      try {
        reply = this.clusterMode
          ? await primary.geoAppend(...keys, ...args)
          : await primary.geoAppendChecked(...keys, this.keys.dataset(), ...args);
      } catch (error) {
        throw unavailable(error);
      }
      const [seq, status, epoch, datasetId, writes, replicationId] = reply;
      if (status === 2) {
        await this.dataset.validate();
        continue;
      }
      // Acked under another replication id than the one checked: check before saying which epoch it is in.
      if (replicationId !== this.dataset.replicationId) await this.dataset.validate();
      this.dataset.observe(replicationId, writes);
      return { seq, duplicate: status === 1, epoch: `${epoch}.${datasetId}` };
    }
    throw new GeoTransportUnavailableError('the Redis dataset is being checked after a restart or failover; retry');
  }

  async read(log: LogRef, afterSeq: number, limit: number): Promise<ReadResult> {
    const { epoch, firstSeq, lastSeq, events } = await this.snapshot(log, afterSeq, limit);
    return { epoch, events, truncated: afterSeq + 1 < firstSeq, lastSeq };
  }

  async head(log: LogRef): Promise<LogHead> {
    const { epoch, firstSeq, lastSeq } = await this.snapshot(log, undefined, 0);
    return { epoch, firstSeq, lastSeq };
  }

  async tail(
    log: LogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<Subscription> {
    const { epoch, firstSeq } = await this.snapshot(log, undefined, 0);
    if (afterSeq + 1 < firstSeq) {
      // Retryable: the caller reads again from the first retained event (a join says `recovered: false`).
      throw new GeoTransportUnavailableError(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    const tail = new StreamTail(this.keys.stream(log), afterSeq, logEpochOf(epoch), onEvent, onError, this.reader);
    tail.extendAt = this.nextExtension();
    this.reader.add(tail);
    return tail;
  }

  async publishEphemeral(log: LogRef, envelope: GeoEnvelopeDraft): Promise<void> {
    await this.requirePrimary()
      .publish(this.keys.ephemeral(log), JSON.stringify(envelope))
      .catch((error: unknown) => Promise.reject(unavailable(error)));
  }

  subscribeEphemeral(log: LogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<Subscription> {
    return this.ephemeral.add(this.keys.ephemeral(log), onEvent);
  }

  async deleteLog(log: LogRef): Promise<void> {
    const primary = this.requirePrimary();
    try {
      await primary.geoReset(this.keys.stream(log), this.keys.meta(log), randomUUID(), this.emptyLogTtlMs);
      // Forget the log's event ids too, so its new incarnation accepts them again.
      for (const node of this.masters()) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', this.keys.eventIdPattern(log), 'COUNT', 500);
          for (const key of found) await primary.del(key);
          cursor = next;
        } while (cursor !== '0');
      }
      // The count tells every instance's next check to compare its logs' epochs (Pub/Sub may drop the message).
      await primary.hincrby(this.keys.dataset(), 'resets', 1);
      await primary.publish(this.keys.resets(), this.keys.stream(log));
    } catch (error) {
      throw unavailable(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reader.close();
    this.disconnectAll(); // also ends a connect() still in progress
    await this.connecting?.catch(() => undefined);
  }

  // ---- connections -------------------------------------------------------------------

  private async open(): Promise<void> {
    const { Redis: RedisClient, Cluster } = await loadRedis();
    const connect = async (endpoint: RedisEndpoint, role: string): Promise<Redis> => {
      // Fail fast while disconnected (no offline queue): an append during an outage must
      // answer UNAVAILABLE now, not after a reconnect.
      const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 3000 };
      const client =
        typeof endpoint === 'string' ? new RedisClient(endpoint, base) : new RedisClient({ ...base, ...(endpoint as RedisOptions) });
      this.clients.add(client);
      client.on('error', (error: Error) => this.logger.debug(`redis ${role}: ${error.message}`));
      client.on('ready', () => this.clientIds.delete(client));
      await client.connect().catch((error: unknown) => {
        client.disconnect();
        if (this.closed) throw new GeoTransportUnavailableError('the Redis transport was closed while connecting');
        throw new GeoTransportUnavailableError(`cannot reach the Redis ${role}: ${(error as Error).message}`, { cause: error });
      });
      return client;
    };
    const connectCluster = async (role: string): Promise<Redis> => {
      const { nodes, options } = this.options.cluster!;
      const client = new Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 3000 },
        ...(options as ClusterOptions),
      });
      this.clients.add(client as unknown as Redis);
      client.on('error', (error: Error) => this.logger.debug(`redis ${role}: ${error.message}`));
      const timeout = setTimeout(() => client.disconnect(), 10_000); // a cluster that never forms
      await client
        .connect()
        .finally(() => clearTimeout(timeout))
        .catch((error: unknown) => {
          client.disconnect();
          throw new GeoTransportUnavailableError(`cannot reach the Redis cluster: ${(error as Error).message}`, { cause: error });
        });
      // The same commands as a single connection for everything geo-ws sends (one slot each).
      return client as unknown as Redis;
    };
    if (this.clusterMode) {
      const cluster = (await connectCluster('cluster')) as ScriptedRedis;
      this.defineScripts(cluster);
      this.primary = cluster;
      this.subscriber = await connectCluster('subscriber');
      this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
      await this.subscriber.subscribe(this.keys.resets());
      this.wakeSubscriber = await connectCluster('live reader');
      this.reader = new RedisWakeReader(
        () => this.requirePrimary(),
        this.wakeSubscriber,
        (key) => this.keys.wake(key),
      );
      this.timers.push(setInterval(() => void this.check(), EPOCH_CHECK_INTERVAL_MS));
      for (const timer of this.timers) timer.unref();
      return;
    }
    const primary = (await connect(this.options.primary!, 'primary')) as ScriptedRedis;
    this.defineScripts(primary);
    this.primary = primary;
    await this.dataset.validate();
    // Reconnected: maybe to a restarted or promoted primary, whose dataset is checked at once.
    primary.on('ready', () => void this.check());
    this.primaryBlocking = await connect(this.options.primary!, 'primary reader');
    this.subscriber = await connect(this.options.primary!, 'subscriber');
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    await this.subscriber.subscribe(this.keys.resets());
    const replicaEndpoint = typeof this.options.replica === 'function' ? this.options.replica(this.context.region) : this.options.replica;
    if (replicaEndpoint) {
      try {
        this.replica = await connect(replicaEndpoint, 'replica');
        this.replicaBlocking = await connect(replicaEndpoint, 'replica reader');
        await this.checkReplica();
      } catch (error) {
        // Not fatal: reads fall back to the primary until the replica answers.
        this.logger.warn(`replica of region "${this.context.region}" unavailable, reading from the primary: ${(error as Error).message}`);
      }
    }
    this.timers.push(setInterval(() => void this.checkReplica(), HEALTH_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.check(), EPOCH_CHECK_INTERVAL_MS));
    for (const timer of this.timers) timer.unref();
  }

  private defineScripts(client: Redis): void {
    client.defineCommand('geoAppend', { numberOfKeys: 3, lua: APPEND_SCRIPT });
    client.defineCommand('geoAppendChecked', { numberOfKeys: 4, lua: APPEND_SCRIPT });
    client.defineCommand('geoValidate', { numberOfKeys: 1, lua: VALIDATE_SCRIPT });
    client.defineCommand('geoEpoch', { numberOfKeys: 1, lua: EPOCH_SCRIPT });
    client.defineCommand('geoCheck', { numberOfKeys: 1, lua: CHECK_SCRIPT });
    client.defineCommand('geoReset', { numberOfKeys: 2, lua: RESET_SCRIPT });
  }

  /** The servers holding keys: the primary, or every master of the cluster. */
  private masters(): Redis[] {
    const primary = this.requirePrimary();
    return this.clusterMode ? (primary as unknown as { nodes(role: 'master'): Redis[] }).nodes('master') : [primary];
  }

  private disconnectAll(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.reader.close();
    for (const client of this.clients) client.disconnect();
  }

  private requirePrimary(): ScriptedRedis {
    if (!this.primary || this.closed) throw new GeoTransportUnavailableError('the Redis transport is not connected');
    if (this.primary.status !== 'ready') throw new GeoTransportUnavailableError('the connection to the Redis primary is down; retry');
    return this.primary;
  }

  private requireSubscriber(): Redis {
    this.requirePrimary();
    return this.subscriber!;
  }

  /**
   * Reads go to the replica while it is healthy, serves the history the dataset was checked
   * under, and both its connections are up; else to the primary.
   */
  private readsFromReplica(): boolean {
    return this.replicaHealthy && this.replica?.status === 'ready' && this.replicaBlocking?.status === 'ready';
  }

  private readConnection(): Redis {
    return this.readsFromReplica() ? this.replica! : this.requirePrimary();
  }

  private readSource(): ReadSource {
    const useReplica = this.readsFromReplica();
    const command = useReplica ? this.replica! : this.requirePrimary();
    const blocking = useReplica ? this.replicaBlocking! : this.primaryBlocking!;
    return {
      command,
      blocking,
      replicationId: async () => (this.clusterMode ? 'cluster' : replicationIdOf(await command.info('replication'))),
      readLive: async (keys, ids) => {
        const read = ['xread', 'COUNT', LIVE_READ_COUNT, 'BLOCK', LIVE_READ_BLOCK_MS, 'STREAMS', ...keys, ...ids];
        if (this.clusterMode)
          return { reply: (await blocking.call(...(read as [string, ...string[]]))) as StreamReply, replicationId: 'cluster' };
        const results = (await blocking.pipeline([read, ['info', 'replication']]).exec())!;
        const failed = results.find(([error]) => error);
        if (failed) throw failed[0]!;
        return { reply: results[0][1] as StreamReply, replicationId: replicationIdOf(results[1][1] as string) };
      },
      checkedReplicationId: () => this.dataset.replicationId,
      recheck: () =>
        void this.dataset.validate().catch((error: unknown) => this.logger.debug(`dataset check: ${(error as Error).message}`)),
      observe: (replicationId, writes) => this.dataset.observe(replicationId, writes),
      blockingId: async () => {
        let id = this.clientIds.get(blocking);
        if (id === undefined) {
          id = await blocking.client('ID');
          this.clientIds.set(blocking, id);
        }
        return id;
      },
    };
  }

  /**
   * A replica is read from while its link to the primary is up and recent, and it serves the
   * history the dataset was checked under (not the one before a restart or failover).
   */
  private async checkReplica(): Promise<void> {
    if (!this.replica || this.closed) return;
    const wasHealthy = this.replicaHealthy;
    try {
      const info = parseInfo(await this.replica.info('replication'));
      const silentMs = Number(info.master_last_io_seconds_ago ?? Infinity) * 1000;
      this.replicaHealthy =
        info.role === 'slave' &&
        info.master_link_status === 'up' &&
        silentMs <= (this.options.maxReplicaLagMs ?? 5000) &&
        info.master_replid === this.dataset.replicationId;
    } catch {
      this.replicaHealthy = false;
    }
    if (wasHealthy !== this.replicaHealthy) {
      this.logger.warn(
        `region "${this.context.region}" now reads from its ${this.replicaHealthy ? 'replica' : 'primary (replica down or lagging)'}`,
      );
    }
  }

  /**
   * The periodic check, a fixed number of commands whatever the number of rooms (an idle
   * instance with 20,000 tailed rooms once cost Redis 37,500 commands/s here):
   * - the dataset (`RedisDataset.check`): a restart, failover or loss is checked at once;
   * - tails learn that their log was reset from the resets channel at once; Pub/Sub is
   *   at-most-once, so when the reset count moved, the logs' own epochs are compared;
   * - in Cluster mode, each master's replication id: after a failover, tailed logs whose
   *   counter went back are failed (their own epochs do not change there);
   * - a tailed log's meta is extended when due, so the epoch its members hold lives on.
   */
  private async check(): Promise<void> {
    const primary = this.primary;
    if (this.closed || primary?.status !== 'ready') return;
    try {
      const { resets } = await this.dataset.check(primary);
      const failedOver = this.clusterMode && (await this.mastersFailedOver());
      if (failedOver || (this.resets !== undefined && resets !== this.resets)) await this.checkLogs(failedOver);
      this.resets = resets;
      await this.extendDueMetas();
    } catch (error) {
      this.logger.debug(`periodic check: ${(error as Error).message}`);
    }
  }

  /** Cluster mode: whether a master's replication id changed since the last check (a failover). */
  private async mastersFailedOver(): Promise<boolean> {
    const ids = new Map<string, string>();
    for (const node of this.masters()) {
      ids.set(`${node.options.host ?? ''}:${node.options.port ?? ''}`, replicationIdOf(await node.info('replication')));
    }
    const before = this.masterReplicationIds;
    this.masterReplicationIds = ids;
    return before.size > 0 && [...ids].some(([node, id]) => before.has(node) && before.get(node) !== id);
  }

  /**
   * Compares every tailed log's own epoch with the primary's (after a reset somewhere), and,
   * after a Cluster failover, its counter with the tail's position. Positions are taken
   * before the read: a tail's cursor may move on while the answer travels, and a position
   * reached after the read is not a regression.
   */
  private async checkLogs(counters: boolean): Promise<void> {
    const tails = this.reader.all().map((tail) => ({ tail, cursor: tail.cursor }));
    const keys = [...new Set(tails.map(({ tail }) => tail.key))];
    const metas = await Promise.all(keys.map((key) => this.requirePrimary().hmget(metaKeyOf(key), 'epoch', 'seq')));
    const byKey = new Map(keys.map((key, i) => [key, metas[i]]));
    for (const { tail, cursor } of tails) {
      const [epoch, seq] = byKey.get(tail.key)!;
      if (epoch !== tail.logEpoch) tail.fail('the room log was reset or lost; its epoch changed');
      else if (counters && Number(seq ?? 0) < cursor) tail.fail('the room log went back to an earlier position after a failover');
    }
  }

  /**
   * Extends the metas of tailed logs whose turn came (once per quarter to half of their
   * life, spread at random so many rooms joined together do not come due together). The
   * same answer fails a tail whose log was reset.
   */
  private async extendDueMetas(): Promise<void> {
    const now = Date.now();
    const due = new Map<string, StreamTail[]>();
    for (const tail of this.reader.all()) {
      if (tail.extendAt > now) continue;
      tail.extendAt = this.nextExtension();
      due.set(tail.key, [...(due.get(tail.key) ?? []), tail]);
    }
    if (due.size === 0) return;
    const primary = this.requirePrimary();
    const keys = [...due.keys()];
    const metas = await Promise.all(keys.map((key) => primary.geoCheck(metaKeyOf(key), this.emptyLogTtlMs)));
    keys.forEach((key, i) => {
      for (const tail of due.get(key)!) {
        if (metas[i][0] !== tail.logEpoch) tail.fail('the room log was reset or lost; its epoch changed');
      }
    });
  }

  /** When a tailed log's meta is next extended: between a quarter and half of its life from now. */
  private nextExtension(): number {
    return Date.now() + (this.emptyLogTtlMs / 4) * (1 + Math.random());
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.keys.resets()) {
      for (const tail of this.reader.tailsOf(message)) tail.fail('the room log was reset; its epoch changed');
      return;
    }
    this.ephemeral.deliver(channel, message);
  }

  // ---- reads -------------------------------------------------------------------------

  /**
   * One consistent view of a log from the read connection: its epoch, bounds and, when
   * asked, events after a position. Meta and stream are replicated together (scripts
   * replicate as one transaction), so a lagging replica is behind, never inconsistent.
   * Outside Cluster mode the read is one transaction with the dataset id and the server's
   * replication id: data read under another replication id than the dataset was checked
   * under (a restarted or promoted primary not checked yet, a replica still serving the
   * history before it) is never reported under the checked epoch: the dataset is checked
   * first, or the primary is read instead. A log without events gets (or keeps) an
   * expiring epoch.
   */
  private async snapshot(
    log: LogRef,
    afterSeq: number | undefined,
    limit: number,
    connection = this.readConnection(),
    attempt = 0,
  ): Promise<Snapshot> {
    const stream = this.keys.stream(log);
    const meta = this.keys.meta(log);
    try {
      const batch = this.clusterMode ? connection.pipeline() : connection.multi();
      batch.hmget(meta, 'epoch', 'seq').pttl(meta).xrange(stream, '-', '+', 'COUNT', 1);
      if (afterSeq !== undefined) batch.xrange(stream, `${afterSeq + 1}-0`, '+', 'COUNT', limit);
      if (!this.clusterMode) batch.hget(this.keys.dataset(), 'id').info('replication');
      const results = (await batch.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
      const [storedEpoch, storedSeq] = results[0][1] as [string | null, string | null];
      const ttl = results[1][1] as number;
      const first = results[2][1] as StreamEntries;
      const lastSeq = Number(storedSeq ?? 0);
      const firstSeq = first.length > 0 ? Number(first[0][0].split('-')[0]) : lastSeq + 1;
      if (!this.clusterMode) {
        const datasetId = results.at(-2)![1] as string | null;
        const replicationId = replicationIdOf(results.at(-1)![1] as string);
        if (datasetId !== this.dataset.id || replicationId !== this.dataset.replicationId) {
          if (connection !== this.primary) return await this.snapshot(log, afterSeq, limit, this.requirePrimary(), attempt);
          if (attempt >= 2) throw new GeoTransportUnavailableError('the Redis dataset is being checked after a restart or failover; retry');
          await this.dataset.validate();
          return await this.snapshot(log, afterSeq, limit, this.requirePrimary(), attempt + 1);
        }
      }
      let logEpoch = storedEpoch;
      if (logEpoch === null) logEpoch = await this.requirePrimary().geoEpoch(meta, randomUUID(), this.emptyLogTtlMs);
      else if (ttl > 0 && ttl < this.emptyLogTtlMs / 2) {
        // Read again while it has no events: its epoch lives on (once per half of its life).
        void this.requirePrimary()
          .geoEpoch(meta, randomUUID(), this.emptyLogTtlMs)
          .catch(() => undefined);
      }
      const events = afterSeq === undefined ? [] : parseEntries(results[3][1] as StreamEntries);
      return { epoch: `${logEpoch}.${this.dataset.id}`, firstSeq, lastSeq, events };
    } catch (error) {
      throw error instanceof GeoTransportUnavailableError ? error : unavailable(error);
    }
  }
}

/** One consistent read of a log (see `RedisTransport.snapshot`). */
interface Snapshot {
  epoch: string;
  firstSeq: number;
  lastSeq: number;
  events: GeoLoggedEnvelope[];
}

/** The meta hash key of a log from its stream key. */
function metaKeyOf(streamKey: string): string {
  return streamKey.replace(/:log$/, ':meta');
}

/** `INFO` text to a map of its fields. */
function parseInfo(text: string): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}
