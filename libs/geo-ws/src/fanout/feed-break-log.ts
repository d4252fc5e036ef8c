import { Logger } from '@nestjs/common';

/** The window of the line budget, and how long a count waits before it is written. */
const WINDOW_MS = 60_000;
/** Lines per window, each naming its room. */
const LINES_PER_WINDOW = 10;

/**
 * Feeds whose live tail stopped, in the logs: each one while they are few (a room log
 * reset, one lost stream), then one line with the count at the end of the minute. A
 * region cut off from its broker stops every feed at once: thousands of rooms must not
 * mean thousands of lines.
 */
export class FeedBreakLog {
  private readonly logger = new Logger('RoomFeed');
  private windowStart = -Infinity;
  private lines = 0;
  private unlogged = 0;
  private flush: NodeJS.Timeout | undefined;

  hit(room: string, reason: string): void {
    const now = Date.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < LINES_PER_WINDOW) {
      this.lines++;
      this.logger.warn(`Live tail of room "${room}" stopped: ${reason}`);
      return;
    }
    this.unlogged++;
    this.flush ??= setTimeout(() => this.writeCount(), this.windowStart + WINDOW_MS - now).unref();
  }

  close(): void {
    clearTimeout(this.flush);
    this.flush = undefined;
  }

  private writeCount(): void {
    this.flush = undefined;
    this.logger.warn(`${this.unlogged} more live tail(s) stopped in the last minute; their members join again`);
    this.unlogged = 0;
  }
}
