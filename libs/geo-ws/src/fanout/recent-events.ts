import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';

/**
 * The last events one feed's live tail handed over, so a member resuming from a recent
 * position (a client arriving from a region that went down, a reconnect) is replayed from
 * memory instead of by a read of the broker: a thousand clients failing over into a room
 * cost no read at all.
 *
 * Every event of the log after {@link from} is held, in `seq` order (the tail hands every
 * event, in order). Bounded twice: at most `maxEvents`, and an event is dropped at the
 * second sweep after it arrived (the host sweeps every `recentMs`), so an idle room lets go
 * of what it held and a node holds at most its event rate times two sweeps.
 */
export class RecentEvents {
  private readonly events: GeoLoggedEnvelope[] = [];
  /** Events before this index were already held at the last sweep: the next one drops them. */
  private heldAtSweep = 0;

  constructor(
    /** The position after which every event is held. */
    private from: number,
    private readonly maxEvents: number,
  ) {}

  get size(): number {
    return this.events.length;
  }

  push(event: GeoLoggedEnvelope): void {
    this.events.push(event);
    if (this.events.length > this.maxEvents) {
      this.from = this.events.shift()!.seq;
      if (this.heldAtSweep > 0) this.heldAtSweep--;
    }
  }

  /**
   * The events after `since`, oldest first; `undefined` when some of them are no longer
   * held (`since` is before {@link from}): then the log is read.
   */
  after(since: number): GeoLoggedEnvelope[] | undefined {
    if (since < this.from) return undefined;
    // The first event past `since`: events are in seq order.
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.events[middle].seq <= since) low = middle + 1;
      else high = middle;
    }
    return this.events.slice(low);
  }

  /** Drops what the last sweep saw already; true when nothing is held any more. */
  sweep(): boolean {
    if (this.heldAtSweep > 0) {
      this.from = this.events[this.heldAtSweep - 1].seq;
      this.events.splice(0, this.heldAtSweep);
    }
    this.heldAtSweep = this.events.length;
    return this.events.length === 0;
  }
}
