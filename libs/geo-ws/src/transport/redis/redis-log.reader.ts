import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogHead, GeoReadResult } from '../geo-transport.interface.js';
import type { GeoLogRef } from '../log-ref.js';
import type { RedisConnections } from './redis-connections.js';
import { replicationIdOf, type RedisDataset } from './redis-dataset.js';
import { unavailable } from './redis-errors.js';
import type { RedisKeys } from './redis-keys.js';
import { parseEntries, type StreamEntries } from './redis-stream.reader.js';

/** One consistent read of a log (see {@link RedisLogReader.snapshot}). */
export interface Snapshot {
  epoch: string;
  firstSeq: number;
  lastSeq: number;
  events: GeoLoggedEnvelope[];
}

/** Reads of room logs: bounds and events, from the region's replica while it is healthy, else the primary. */
export class RedisLogReader {
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly dataset: RedisDataset,
    private readonly emptyLogTtlMs: number,
  ) {}

  async read(log: GeoLogRef, afterSeq: number, limit: number): Promise<GeoReadResult> {
    const { epoch, firstSeq, lastSeq, events } = await this.snapshot(log, afterSeq, limit);
    return { epoch, events, truncated: afterSeq + 1 < firstSeq, lastSeq };
  }

  async head(log: GeoLogRef): Promise<GeoLogHead> {
    const { epoch, firstSeq, lastSeq } = await this.snapshot(log, undefined, 0);
    return { epoch, firstSeq, lastSeq };
  }

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
  async snapshot(log: GeoLogRef, afterSeq: number | undefined, limit: number, connection?: Redis, attempt = 0): Promise<Snapshot> {
    const { connections, dataset } = this;
    const clusterMode = connections.clusterMode;
    const reader = connection ?? connections.readConnection();
    const stream = this.keys.stream(log);
    const meta = this.keys.meta(log);
    try {
      const batch = clusterMode ? reader.pipeline() : reader.multi();
      batch.hmget(meta, 'epoch', 'seq').pttl(meta).xrange(stream, '-', '+', 'COUNT', 1);
      if (afterSeq !== undefined) batch.xrange(stream, `${afterSeq + 1}-0`, '+', 'COUNT', limit);
      if (!clusterMode) batch.hget(this.keys.dataset(), 'id').info('replication');
      const results = (await batch.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
      const [storedEpoch, storedSeq] = results[0][1] as [string | null, string | null];
      const ttl = results[1][1] as number;
      const first = results[2][1] as StreamEntries;
      const lastSeq = Number(storedSeq ?? 0);
      const firstSeq = first.length > 0 ? Number(first[0][0].split('-')[0]) : lastSeq + 1;
      if (!clusterMode) {
        const datasetId = results.at(-2)![1] as string | null;
        const replicationId = replicationIdOf(results.at(-1)![1] as string);
        if (datasetId !== dataset.id || replicationId !== dataset.replicationId) {
          const primary = connections.requirePrimary();
          if (!connections.isPrimary(reader)) return await this.snapshot(log, afterSeq, limit, primary, attempt);
          if (attempt >= 2) throw new GeoTransportUnavailableError('the Redis dataset is being checked after a restart or failover; retry');
          await dataset.validate();
          return await this.snapshot(log, afterSeq, limit, primary, attempt + 1);
        }
      }
      let logEpoch = storedEpoch;
      if (logEpoch === null) logEpoch = await connections.requirePrimary().geoEpoch(meta, randomUUID(), this.emptyLogTtlMs);
      else if (ttl > 0 && ttl < this.emptyLogTtlMs / 2) {
        // Read again while it has no events: its epoch lives on (once per half of its life).
        void connections
          .requirePrimary()
          .geoEpoch(meta, randomUUID(), this.emptyLogTtlMs)
          .catch(() => undefined);
      }
      const events = afterSeq === undefined ? [] : parseEntries(results[3][1] as StreamEntries);
      return { epoch: `${logEpoch}.${dataset.id}`, firstSeq, lastSeq, events };
    } catch (error) {
      throw error instanceof GeoTransportUnavailableError ? error : unavailable(error);
    }
  }
}
