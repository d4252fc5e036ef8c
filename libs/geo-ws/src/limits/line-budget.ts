/** The window of a line budget, and how long a count waits before it is written. */
const WINDOW_MS = 60_000;
/** Lines per window, each naming what it is about. */
const LINES_PER_WINDOW = 10;

/**
 * How a log that can be hit thousands of times a second (every room's tail stopping, every
 * session failing to save when the broker goes away) stays readable: the first few hits of
 * a minute write their own line, the rest are counted by the caller and written as one
 * line when the minute ends (`writeCount`, once per minute with hits left over).
 */
export class LineBudget {
  private windowStart = -Infinity;
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Writes the count of the hits that had no line of their own (and resets it). */
    private readonly writeCount: () => void,
    private readonly perWindow = LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /** True when this hit may write its own line; false when the caller counts it instead. */
  take(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < this.perWindow) {
      this.lines++;
      return true;
    }
    this.timer ??= setTimeout(() => this.flush(), this.windowStart + this.windowMs - now).unref();
    return false;
  }

  /** Writes the count now (the end of the minute, or a shutdown that should not drop it). */
  flush(): void {
    this.close();
    this.writeCount();
  }

  /** Stops the timer without writing. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
