import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { unavailable } from './redis-errors.js';

/** The dataset's part of every epoch in Cluster mode, where each master has its own history. */
export const CLUSTER_DATASET = 'cluster';

/** A connection with the dataset check defined (`VALIDATE_SCRIPT`). */
export interface DatasetRedis extends Redis {
  geoValidate(dataset: string, candidate: string, id: string, replicationId: string, writes: number): Promise<[string, string, number]>;
}

/** What the periodic check read besides the dataset: the count of log resets (`deleteLog`). */
export interface DatasetCheck {
  resets: number;
}

/**
 * Which dataset the Redis primary serves, as this process last checked it: the second part
 * of every epoch (`<log epoch>.<dataset id>`). The id changes only when events may be gone:
 * a new, flushed or replaced dataset, or a restart or failover after which the dataset
 * holds fewer writes than this process saw acknowledged or delivered (`VALIDATE_SCRIPT`).
 * A primary restarted with its data, or a failover that lost nothing anyone saw, keeps it.
 *
 * Writes are counted by the append script; this process remembers the most it saw (acks,
 * live entries, checks) under the replication id it checked. After a restart or failover
 * (a new replication id) the append script refuses writes until some process has checked
 * the dataset, so the count as loaded cannot be raised by new writes before the comparison.
 *
 * In Cluster mode the checks do not apply (each master has its own replication history):
 * the id is `cluster` and epochs change only with their logs.
 */
export class RedisDataset {
  private datasetId = '';
  private checkedReplicationId = '';
  /** The most writes seen under {@link checkedReplicationId}. */
  private seenWrites = 0;
  private validating: Promise<void> | undefined;

  constructor(
    /** The dataset hash (in Cluster mode it only counts resets). */
    private readonly key: string,
    private readonly clusterMode: boolean,
    private readonly primary: () => DatasetRedis,
    /** The id changed: every epoch changed, and every live tail must stop. */
    private readonly onChanged: (reason: string) => void,
  ) {
    if (clusterMode) this.datasetId = this.checkedReplicationId = CLUSTER_DATASET;
  }

  /** The id in every epoch (`''` until the first check). */
  get id(): string {
    return this.datasetId;
  }

  /** The primary's replication id as last checked: reads served under another one wait or go elsewhere. */
  get replicationId(): string {
    return this.checkedReplicationId;
  }

  /** Writes counted up to `writes` were seen (acked, read) under `replicationId`. */
  observe(replicationId: string, writes: number): void {
    if (replicationId === this.checkedReplicationId && writes > this.seenWrites) this.seenWrites = writes;
  }

  /**
   * Checks the dataset the primary serves now and adopts it (one check at a time; callers
   * share it). When its id is not the one this process had, `onChanged` fails every tail.
   */
  validate(): Promise<void> {
    if (this.clusterMode) return Promise.resolve();
    const key = this.key;
    this.validating ??= (async () => {
      let reply: [string, string, number];
      try {
        reply = await this.primary().geoValidate(key, newDatasetId(), this.datasetId, this.checkedReplicationId, this.seenWrites);
      } catch (error) {
        throw error instanceof GeoTransportUnavailableError ? error : unavailable(error);
      }
      const [id, replicationId, writes] = reply;
      const before = this.datasetId;
      this.datasetId = id;
      if (replicationId !== this.checkedReplicationId || id !== before) this.seenWrites = 0;
      this.checkedReplicationId = replicationId;
      this.observe(replicationId, writes);
      if (before !== '' && id !== before) {
        this.onChanged(
          'the Redis dataset changed (flushed, replaced, or it lost writes in a restart or failover): the room log is in another epoch',
        );
      }
    })().finally(() => (this.validating = undefined));
    return this.validating;
  }

  /**
   * The periodic check: one round trip and a fixed number of commands whatever the number of
   * rooms. Validates when the primary restarted or failed over, the id changed, or the count
   * went back; returns the reset count, so the caller checks its logs' epochs only after a reset.
   */
  async check(primary: Redis): Promise<DatasetCheck> {
    const key = this.key;
    if (this.clusterMode) return { resets: Number((await primary.hget(key, 'resets')) ?? 0) };
    const results = (await primary.pipeline().hmget(key, 'id', 'replid', 'writes', 'resets').info('replication').exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    const [id, replicationId, writes, resets] = results[0][1] as (string | null)[];
    const current = replicationIdOf(results[1][1] as string);
    const wentBack = current === this.checkedReplicationId && Number(writes ?? 0) < this.seenWrites;
    if (id !== this.datasetId || replicationId !== current || current !== this.checkedReplicationId || wentBack) await this.validate();
    else this.observe(current, Number(writes ?? 0));
    return { resets: Number(resets ?? 0) };
  }
}

/** A dataset id: 12 hex digits, as short as the replication id prefix epochs carried before. */
function newDatasetId(): string {
  return randomBytes(6).toString('hex');
}

/** `master_replid` of `INFO replication` (one search, not a parse of every field). */
export function replicationIdOf(info: string): string {
  return /^master_replid:([0-9a-f]+)/m.exec(info)?.[1] ?? '';
}
