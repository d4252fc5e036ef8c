/** Where one room event sits: its room `seq`, its stream sequence and its epoch. */
export interface LogPosition {
  roomSeq: number;
  streamSeq: number;
  epoch: string;
}

const POSITIONS_PER_LOG = 4096;
const LOGS = 10_000;

/**
 * Remembers recent room-seq → stream-seq pairs seen by appends, tails and reads, so a
 * resume from a recent position (the common case after a failover) finds its stream
 * position without searching the stream.
 */
export class PositionIndex {
  private readonly logs = new Map<string, { last?: LogPosition; seqs: Map<number, number> }>();

  record(key: string, position: LogPosition): void {
    const entry = this.entry(key);
    if (entry.last && entry.last.epoch !== position.epoch) entry.seqs.clear();
    entry.seqs.set(position.roomSeq, position.streamSeq);
    if (entry.seqs.size > POSITIONS_PER_LOG) entry.seqs.delete(entry.seqs.keys().next().value!);
    if (!entry.last || entry.last.epoch !== position.epoch || position.roomSeq > entry.last.roomSeq) entry.last = position;
  }

  /** The last position this node knows of (it may be stale: appends verify it). */
  last(key: string): LogPosition | undefined {
    return this.logs.get(key)?.last;
  }

  streamSeqOf(key: string, roomSeq: number, epoch: string): number | undefined {
    const entry = this.logs.get(key);
    return entry?.last?.epoch === epoch ? entry.seqs.get(roomSeq) : undefined;
  }

  forgetLast(key: string): void {
    const entry = this.logs.get(key);
    if (entry) entry.last = undefined;
  }

  forget(key: string): void {
    this.logs.delete(key);
  }

  private entry(key: string) {
    let entry = this.logs.get(key);
    if (entry) {
      // Refresh recency: the Map keeps insertion order, the oldest log is evicted first.
      this.logs.delete(key);
    } else {
      entry = { seqs: new Map() };
      if (this.logs.size >= LOGS) this.logs.delete(this.logs.keys().next().value!);
    }
    this.logs.set(key, entry);
    return entry;
  }
}
