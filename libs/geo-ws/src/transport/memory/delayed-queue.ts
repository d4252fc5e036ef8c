/**
 * Delivers items after a delay, strictly in the order they were pushed, and can be held
 * (a partitioned region) and released. Used to simulate the link between two regions.
 */
export class DelayedQueue<T> {
  private readonly items: { item: T; dueAt: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private closed = false;

  constructor(private readonly deliver: (item: T) => void) {}

  push(item: T, delayMs: number): void {
    if (this.closed) return;
    const last = this.items.at(-1);
    // Never due before the previous item: delay changes must not reorder the link.
    const dueAt = Math.max(Date.now() + delayMs, last?.dueAt ?? 0);
    this.items.push({ item, dueAt });
    this.schedule();
  }

  hold(): void {
    this.held = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  release(): void {
    this.held = false;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.items.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.held || this.closed || this.timer || this.items.length === 0) return;
    const wait = Math.max(0, this.items[0].dueAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushDue();
    }, wait);
  }

  private flushDue(): void {
    const now = Date.now();
    while (!this.held && !this.closed && this.items.length > 0 && this.items[0].dueAt <= now) {
      this.deliver(this.items.shift()!.item);
    }
    this.schedule();
  }
}
