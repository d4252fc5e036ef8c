import { Logger } from '@nestjs/common';
import type { ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { loadRedis } from './load-redis.js';
import { replicationIdOf, type DatasetRedis, type RedisDataset } from './redis-dataset.js';
import { APPEND_SCRIPT, CHECK_SCRIPT, EPOCH_SCRIPT, RESET_SCRIPT, VALIDATE_SCRIPT } from './redis-scripts.js';
import type { ReadSource, StreamReply } from './redis-stream.reader.js';
import type { GeoRedisEndpoint, GeoRedisTransportOptions } from './redis-transport.options.js';

/** The commands the scripts add to a connection (`redis-scripts.ts`). */
export interface ScriptedRedis extends DatasetRedis {
  /** KEYS: stream, meta, dedup key (Cluster mode); `geoAppendChecked` adds the dataset hash. */
  geoAppend(...keysAndArgs: (string | number)[]): Promise<AppendReply>;
  geoAppendChecked(...keysAndArgs: (string | number)[]): Promise<AppendReply>;
  geoEpoch(meta: string, candidate: string, ttlMs: number): Promise<string>;
  geoCheck(meta: string, ttlMs: number): Promise<[string | null, string | null]>;
  geoReset(stream: string, meta: string, epoch: string, ttlMs: number): Promise<number>;
}

/** `APPEND_SCRIPT`'s reply: seq, status (0 stored, 1 duplicate, 2 check the dataset first), log epoch, dataset id, writes, replication id. */
export type AppendReply = [number, number, string, string, number, string];

const HEALTH_INTERVAL_MS = 1000;
/** The live reader's `XREAD`: entries per stream per call, and how long it blocks when nothing comes. */
const LIVE_READ_COUNT = '500';
const LIVE_READ_BLOCK_MS = '2000';

/**
 * The connections of one Redis transport, in one of two topologies, and their lifecycle:
 * - a primary (standalone or Sentinel): a command connection with the scripts, a blocking
 *   one for the live reader, a Pub/Sub subscriber, and, when this region has a replica, a
 *   command and a blocking connection to it, read from while it is healthy;
 * - a Redis Cluster: a command client with the scripts, a subscriber, and a second
 *   subscriber for the live reader's wake-ups.
 * Every connection fails fast while disconnected (no offline queue): an append during an
 * outage must answer `UNAVAILABLE` now, not after a reconnect.
 */
export class RedisConnections {
  private readonly logger = new Logger('RedisTransport');
  /** Every connection opened, so close() can end them even in the middle of open(). */
  private readonly clients = new Set<Redis>();
  private readonly clientIds = new WeakMap<Redis, number>();
  private primary: ScriptedRedis | undefined;
  private primaryBlocking: Redis | undefined;
  private replica: Redis | undefined;
  private replicaBlocking: Redis | undefined;
  private replicaHealthy = false;
  private subscriber: Redis | undefined;
  /** Cluster mode: the live reader's wake-up subscriber. */
  private wakes: Redis | undefined;
  private health: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: GeoRedisTransportOptions,
    private readonly region: string,
    /** The dataset the primary serves, as last checked (which history a replica must serve). */
    private readonly dataset: RedisDataset,
  ) {}

  get clusterMode(): boolean {
    return this.options.cluster !== undefined;
  }

  /**
   * Opens every connection of the topology; `onMessage` hears the subscriber, which is
   * subscribed to `channels` before this resolves. Standalone: the primary's dataset is
   * checked once it is open, before any other connection (`validate`).
   */
  async open(onMessage: (channel: string, message: string) => void, channels: string[], validate: () => Promise<void>): Promise<void> {
    if (this.clusterMode) {
      this.primary = (await this.connectCluster('cluster')) as ScriptedRedis;
      defineScripts(this.primary);
      this.subscriber = await this.connectCluster('subscriber');
      this.wakes = await this.connectCluster('live reader');
    } else {
      this.primary = (await this.connect(this.options.primary!, 'primary')) as ScriptedRedis;
      defineScripts(this.primary);
      await validate();
      this.primaryBlocking = await this.connect(this.options.primary!, 'primary reader');
      this.subscriber = await this.connect(this.options.primary!, 'subscriber');
    }
    this.subscriber.on('message', onMessage);
    for (const channel of channels) await this.subscriber.subscribe(channel);
    if (!this.clusterMode) await this.openReplica();
  }

  /** The primary (or cluster) connection, after each reconnect: a restarted or promoted primary is checked at once. */
  onPrimaryReady(listener: () => void): void {
    this.primary?.on('ready', listener);
  }

  /** Cluster mode: the live reader's wake-up subscriber. */
  get wakeSubscriber(): Redis {
    return this.wakes!;
  }

  isReady(): boolean {
    return !this.closed && this.primary?.status === 'ready';
  }

  requirePrimary(): ScriptedRedis {
    if (!this.primary || this.closed) throw new GeoTransportUnavailableError('the Redis transport is not connected');
    if (this.primary.status !== 'ready') throw new GeoTransportUnavailableError('the connection to the Redis primary is down; retry');
    return this.primary;
  }

  requireSubscriber(): Redis {
    this.requirePrimary();
    return this.subscriber!;
  }

  isPrimary(connection: Redis): boolean {
    return connection === this.primary;
  }

  /** The servers holding keys: the primary, or every master of the cluster. */
  masters(): Redis[] {
    const primary = this.requirePrimary();
    return this.clusterMode ? (primary as unknown as { nodes(role: 'master'): Redis[] }).nodes('master') : [primary];
  }

  /** Where reads go: the replica while it is healthy, serves the checked history and both its connections are up; else the primary. */
  readConnection(): Redis {
    return this.readsFromReplica() ? this.replica! : this.requirePrimary();
  }

  /** What the live reader reads from now (see `ReadSource`). */
  readSource(onDebug: (line: string) => void): ReadSource {
    const useReplica = this.readsFromReplica();
    const command = useReplica ? this.replica! : this.requirePrimary();
    const blocking = useReplica ? this.replicaBlocking! : this.primaryBlocking!;
    const { dataset } = this;
    return {
      command,
      blocking,
      replicationId: async () => replicationIdOf(await command.info('replication')),
      readLive: async (keys, ids) => {
        const read = ['xread', 'COUNT', LIVE_READ_COUNT, 'BLOCK', LIVE_READ_BLOCK_MS, 'STREAMS', ...keys, ...ids];
        const results = (await blocking.pipeline([read, ['info', 'replication']]).exec())!;
        const failed = results.find(([error]) => error);
        if (failed) throw failed[0]!;
        return { reply: results[0][1] as StreamReply, replicationId: replicationIdOf(results[1][1] as string) };
      },
      checkedReplicationId: () => dataset.replicationId,
      recheck: () => void dataset.validate().catch((error: unknown) => onDebug(`dataset check: ${(error as Error).message}`)),
      observe: (replicationId, writes) => dataset.observe(replicationId, writes),
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

  /** Ends every connection, also those of an open() still in progress. */
  close(): void {
    this.closed = true;
    this.disconnect();
  }

  /** Ends every connection; a later open() may start again (a failed connect). */
  disconnect(): void {
    clearInterval(this.health);
    this.health = undefined;
    for (const client of this.clients) client.disconnect();
  }

  private async openReplica(): Promise<void> {
    const endpoint = typeof this.options.replica === 'function' ? this.options.replica(this.region) : this.options.replica;
    if (endpoint) {
      try {
        this.replica = await this.connect(endpoint, 'replica');
        this.replicaBlocking = await this.connect(endpoint, 'replica reader');
        await this.checkReplica();
      } catch (error) {
        // Not fatal: reads fall back to the primary until the replica answers.
        this.logger.warn(`replica of region "${this.region}" unavailable, reading from the primary: ${(error as Error).message}`);
      }
    }
    this.health = setInterval(() => void this.checkReplica(), HEALTH_INTERVAL_MS);
    this.health.unref();
  }

  private readsFromReplica(): boolean {
    return this.replicaHealthy && this.replica?.status === 'ready' && this.replicaBlocking?.status === 'ready';
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
        `region "${this.region}" now reads from its ${this.replicaHealthy ? 'replica' : 'primary (replica down or lagging)'}`,
      );
    }
  }

  private async connect(endpoint: GeoRedisEndpoint, role: string): Promise<Redis> {
    const { Redis: RedisClient } = await loadRedis();
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
  }

  private async connectCluster(role: string): Promise<Redis> {
    const { Cluster } = await loadRedis();
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
  }
}

function defineScripts(client: Redis): void {
  client.defineCommand('geoAppend', { numberOfKeys: 3, lua: APPEND_SCRIPT });
  client.defineCommand('geoAppendChecked', { numberOfKeys: 4, lua: APPEND_SCRIPT });
  client.defineCommand('geoValidate', { numberOfKeys: 1, lua: VALIDATE_SCRIPT });
  client.defineCommand('geoEpoch', { numberOfKeys: 1, lua: EPOCH_SCRIPT });
  client.defineCommand('geoCheck', { numberOfKeys: 1, lua: CHECK_SCRIPT });
  client.defineCommand('geoReset', { numberOfKeys: 2, lua: RESET_SCRIPT });
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
