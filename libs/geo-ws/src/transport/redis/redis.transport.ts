import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
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
import type { GeoLogRef } from '../log-ref.js';
import type { GeoRoomHome } from '../room-home.js';
import { RedisConnections, type AppendReply } from './redis-connections.js';
import { RedisDataset } from './redis-dataset.js';
import { EphemeralChannels } from './redis-ephemeral.js';
import { EPOCH_CHECK_INTERVAL_MS, RedisEpochs } from './redis-epochs.js';
import { unavailable } from './redis-errors.js';
import { RedisKeys } from './redis-keys.js';
import { RedisLogReader } from './redis-log.reader.js';
import { RedisStateStore } from './redis-state.store.js';
import { logEpochOf, RedisStreamReader, type LiveReader } from './redis-stream.reader.js';
import { StreamTail } from './redis-tails.js';
import type { GeoRedisTransportOptions } from './redis-transport.options.js';
import { RedisWakeReader } from './redis-wake.reader.js';

/** Default life of the epoch of a log without events after its last read or live check. */
const EMPTY_LOG_TTL_MS = 60 * 60 * 1000;

/**
 * The room log on Redis Streams: one stream per room log on the primary (home region),
 * read by each region from its own replica.
 * @example transport: redisTransport({ primary: 'redis://redis-eu:6379', replica: (region) => `redis://redis-${region}:6379` })
 */
export function redisTransport(options: GeoRedisTransportOptions): GeoTransportFactory {
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
 * - no key a client can cause is permanent, since any client can create logs by joining
 *   rooms: a log's meta hash lives `emptyLogTtlMs` after its last read or live check, and,
 *   once it has events, `maxAgeMs + emptyLogTtlMs` after its last append; its stream
 *   `maxAgeMs` (retention). The dataset hash is one per namespace.
 *
 * This class holds the options and composes the parts: connections ({@link RedisConnections}),
 * the dataset ({@link RedisDataset}) and epochs ({@link RedisEpochs}), reads
 * ({@link RedisLogReader}), the live reader (one `XREAD`, or wake-ups in Cluster mode),
 * ephemeral channels and the state store; it appends and deletes logs itself.
 */
export class RedisTransport implements GeoTransport {
  readonly name = 'redis';
  readonly contiguousSeq = true;
  readonly state: GeoStateStore;
  private readonly logger = new Logger(RedisTransport.name);
  private readonly keys: RedisKeys;
  private readonly connections: RedisConnections;
  private readonly dataset: RedisDataset;
  private readonly epochs: RedisEpochs;
  private readonly reads: RedisLogReader;
  private reader: LiveReader;
  private readonly ephemeral = new EphemeralChannels(() => this.connections.requireSubscriber());
  private connecting: Promise<void> | undefined;
  private readonly emptyLogTtlMs: number;
  private closed = false;

  constructor(
    options: GeoRedisTransportOptions,
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
    // A tailed log's meta is extended every quarter to half of this: that must span several checks.
    if (!Number.isInteger(this.emptyLogTtlMs) || this.emptyLogTtlMs < 5 * EPOCH_CHECK_INTERVAL_MS) {
      throw new GeoConfigError(
        `redisTransport: emptyLogTtlMs must be an integer of at least ${5 * EPOCH_CHECK_INTERVAL_MS}, got ${String(options.emptyLogTtlMs)}`,
      );
    }
    const primary = () => this.connections.requirePrimary();
    this.dataset = new RedisDataset(this.keys.dataset(), options.cluster !== undefined, primary, (reason) => {
      for (const tail of this.reader.all()) tail.fail(reason);
    });
    this.connections = new RedisConnections(options, context.region, this.dataset);
    this.state = new RedisStateStore(primary, this.keys, () => this.connections.requireSubscriber());
    this.epochs = new RedisEpochs(this.connections, this.dataset, () => this.reader, this.emptyLogTtlMs);
    this.reads = new RedisLogReader(this.connections, this.keys, this.dataset, this.emptyLogTtlMs);
    this.reader = new RedisStreamReader(() => this.connections.readSource((line) => this.logger.debug(line)));
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new GeoTransportUnavailableError('the Redis transport was closed; connect a new one'));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      this.epochs.stop();
      this.reader.close();
      this.connections.disconnect();
      // Options the transport cannot work with stay configuration errors; the rest is about reaching Redis.
      throw error instanceof GeoConfigError ? error : unavailable(error);
    });
    return this.connecting;
  }

  isReady(): boolean {
    return !this.closed && this.connections.isReady();
  }

  async append(log: GeoLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult> {
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
      this.connections.clusterMode ? this.keys.wake(stream) : '',
      retention.maxAgeMs + this.emptyLogTtlMs,
    ];
    // A refusal (status 2) means the dataset is unchecked since a restart or failover: check it, then write.
    for (let attempt = 0; attempt < 3; attempt++) {
      const primary = this.connections.requirePrimary();
      let reply: AppendReply;
      try {
        reply = this.connections.clusterMode
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

  read(log: GeoLogRef, afterSeq: number, limit: number): Promise<GeoReadResult> {
    return this.reads.read(log, afterSeq, limit);
  }

  head(log: GeoLogRef): Promise<GeoLogHead> {
    return this.reads.head(log);
  }

  async tail(
    log: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<GeoSubscription> {
    const { epoch, firstSeq } = await this.reads.snapshot(log, undefined, 0);
    if (afterSeq + 1 < firstSeq) {
      // Retryable: the caller reads again from the first retained event (a join says `recovered: false`).
      throw new GeoTransportUnavailableError(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    const tail = new StreamTail(this.keys.stream(log), afterSeq, logEpochOf(epoch), onEvent, onError, this.reader);
    tail.extendAt = this.epochs.nextExtension();
    this.reader.add(tail);
    return tail;
  }

  async publishEphemeral(log: GeoLogRef, envelope: GeoEnvelopeDraft): Promise<void> {
    await this.connections
      .requirePrimary()
      .publish(this.keys.ephemeral(log), JSON.stringify(envelope))
      .catch((error: unknown) => Promise.reject(unavailable(error)));
  }

  subscribeEphemeral(log: GeoLogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<GeoSubscription> {
    return this.ephemeral.add(this.keys.ephemeral(log), onEvent);
  }

  /** Every global log lives with the primary (or the cluster), wherever the deployment put it. */
  readonly placement = 'fixed';

  home(room: string): Promise<GeoRoomHome> {
    return Promise.resolve({ room, region: null, term: 0, placement: this.placement });
  }

  async deleteLog(log: GeoLogRef): Promise<void> {
    const primary = this.connections.requirePrimary();
    try {
      await primary.geoReset(this.keys.stream(log), this.keys.meta(log), randomUUID(), this.emptyLogTtlMs);
      // Forget the log's event ids too, so its new incarnation accepts them again.
      for (const node of this.connections.masters()) {
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
    this.epochs.stop();
    this.reader.close();
    this.connections.close(); // also ends a connect() still in progress
    await this.connecting?.catch(() => undefined);
  }

  private async open(): Promise<void> {
    await this.connections.open(
      (channel, message) => this.onMessage(channel, message),
      [this.keys.resets()],
      () => this.dataset.validate(),
    );
    if (this.connections.clusterMode) {
      this.reader = new RedisWakeReader(
        () => this.connections.requirePrimary(),
        this.connections.wakeSubscriber,
        (key) => this.keys.wake(key),
      );
    }
    // Reconnected: maybe to a restarted or promoted primary, whose dataset is checked at once.
    this.connections.onPrimaryReady(() => void this.epochs.check());
    this.epochs.start();
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.keys.resets()) {
      for (const tail of this.reader.tailsOf(message)) tail.fail('the room log was reset; its epoch changed');
      return;
    }
    this.ephemeral.deliver(channel, message);
  }
}
