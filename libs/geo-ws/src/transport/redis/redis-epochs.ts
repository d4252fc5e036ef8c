import { Logger } from '@nestjs/common';
import type { RedisConnections } from './redis-connections.js';
import { replicationIdOf, type RedisDataset } from './redis-dataset.js';
import type { LiveReader } from './redis-stream.reader.js';
import type { StreamTail } from './redis-tails.js';

/** How often the periodic check runs (see {@link RedisEpochs.check}). */
export const EPOCH_CHECK_INTERVAL_MS = 2000;

/**
 * Keeps the epochs that live tails hold true: a log's own epoch (its meta hash) joined to
 * the dataset's id ({@link RedisDataset}). Every 2 s, a fixed number of commands whatever
 * the number of rooms (20,000 idle rooms once cost Redis 30,000-37,500 commands/s):
 * - the dataset (`RedisDataset.check`): a restart, failover or loss is checked at once;
 * - tails learn that their log was reset from the resets channel at once; Pub/Sub is
 *   at-most-once, so when the reset count moved, the logs' own epochs are compared;
 * - in Cluster mode, each master's replication id: after a failover, tailed logs whose
 *   counter went back are failed (their own epochs do not change there);
 * - a tailed log's meta is extended when its turn comes, so the epoch its members hold lives on.
 */
export class RedisEpochs {
  private readonly logger = new Logger('RedisTransport');
  /** The reset count at the last check: logs' own epochs are compared only when it moved. */
  private resets: number | undefined;
  /** Cluster mode: each master's replication id at the last check (a failover changes one). */
  private masterReplicationIds = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connections: RedisConnections,
    private readonly dataset: RedisDataset,
    private readonly reader: () => LiveReader,
    private readonly emptyLogTtlMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), EPOCH_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** When a tailed log's meta is next extended: between a quarter and half of its life from now. */
  nextExtension(): number {
    return Date.now() + (this.emptyLogTtlMs / 4) * (1 + Math.random());
  }

  /** The periodic check (also run when the primary connection is back). */
  async check(): Promise<void> {
    if (!this.connections.isReady()) return;
    try {
      const { resets } = await this.dataset.check(this.connections.requirePrimary());
      const failedOver = this.connections.clusterMode && (await this.mastersFailedOver());
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
    for (const node of this.connections.masters()) {
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
    const tails = this.reader()
      .all()
      .map((tail) => ({ tail, cursor: tail.cursor }));
    const keys = [...new Set(tails.map(({ tail }) => tail.key))];
    const primary = this.connections.requirePrimary();
    const metas = await Promise.all(keys.map((key) => primary.hmget(metaKeyOf(key), 'epoch', 'seq')));
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
    for (const tail of this.reader().all()) {
      if (tail.extendAt > now) continue;
      tail.extendAt = this.nextExtension();
      due.set(tail.key, [...(due.get(tail.key) ?? []), tail]);
    }
    if (due.size === 0) return;
    const primary = this.connections.requirePrimary();
    const keys = [...due.keys()];
    const metas = await Promise.all(keys.map((key) => primary.geoCheck(metaKeyOf(key), this.emptyLogTtlMs)));
    keys.forEach((key, i) => {
      for (const tail of due.get(key)!) {
        if (metas[i][0] !== tail.logEpoch) tail.fail('the room log was reset or lost; its epoch changed');
      }
    });
  }
}

/** The meta hash key of a log from its stream key. */
function metaKeyOf(streamKey: string): string {
  return streamKey.replace(/:log$/, ':meta');
}
