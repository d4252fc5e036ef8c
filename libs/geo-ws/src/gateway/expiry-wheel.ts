/** Something the wheel ends at a deadline; the wheel keeps its slot on it (no map per item). */
export interface Expiring {
  /** The wheel's slot for this item, or undefined when it is not scheduled. */
  expirySlot?: number;
  expired(): void;
}

/**
 * One timer for every connection's credential expiry, instead of a `setTimeout` per
 * connection: deadlines fall into slots of `resolutionMs`, and one interval ends every item
 * of each slot that has passed. Scheduling and cancelling are O(1); an item ends at most
 * `resolutionMs` after its deadline, never before.
 */
export class ExpiryWheel {
  private readonly slots = new Map<number, Set<Expiring>>();
  /** The last slot whose items were ended. */
  private done: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolutionMs = 250,
    private readonly now: () => number = Date.now,
  ) {
    this.done = this.slotOf(this.now()) - 1;
    this.timer = setInterval(() => this.advance(), resolutionMs);
    this.timer.unref();
  }

  /** Ends `item` at `expiresAt` (epoch ms), replacing its earlier deadline; `undefined` cancels. */
  schedule(item: Expiring, expiresAt: number | undefined): void {
    this.cancel(item);
    if (expiresAt === undefined) return;
    // Past the slot already ended, or in it: the next turn ends it.
    const slot = Math.max(this.slotOf(expiresAt), this.done + 1);
    let items = this.slots.get(slot);
    if (!items) this.slots.set(slot, (items = new Set()));
    items.add(item);
    item.expirySlot = slot;
  }

  cancel(item: Expiring): void {
    if (item.expirySlot === undefined) return;
    const items = this.slots.get(item.expirySlot);
    items?.delete(item);
    if (items?.size === 0) this.slots.delete(item.expirySlot);
    item.expirySlot = undefined;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Ends every item whose slot has passed (also the slots a blocked event loop or a clock jump skipped). */
  advance(): void {
    // A slot ends once its whole interval is over, so nothing ends before its deadline.
    const last = this.slotOf(this.now()) - 1;
    const due =
      last - this.done <= this.slots.size
        ? Array.from({ length: Math.max(0, last - this.done) }, (_, i) => this.done + 1 + i)
        : [...this.slots.keys()].filter((slot) => slot <= last).sort((a, b) => a - b);
    for (const slot of due) {
      const items = this.slots.get(slot);
      if (!items) continue;
      this.slots.delete(slot);
      for (const item of items) {
        item.expirySlot = undefined;
        item.expired();
      }
    }
    this.done = Math.max(this.done, last);
  }

  private slotOf(time: number): number {
    return Math.floor(time / this.resolutionMs);
  }
}
