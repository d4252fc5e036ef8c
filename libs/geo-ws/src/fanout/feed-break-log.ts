import { Logger } from '@nestjs/common';
import { LineBudget } from '../limits/line-budget.js';

/**
 * Feeds whose live tail stopped, in the logs: each one while they are few (a room log
 * reset, one lost stream), then one line with the count at the end of the minute. A
 * region cut off from its broker stops every feed at once: thousands of rooms must not
 * mean thousands of lines.
 */
export class FeedBreakLog {
  private readonly logger = new Logger('RoomFeed');
  private readonly budget = new LineBudget(() => this.writeCount());
  private unlogged = 0;

  hit(room: string, reason: string): void {
    if (this.budget.take()) this.logger.warn(`Live tail of room "${room}" stopped: ${reason}`);
    else this.unlogged++;
  }

  close(): void {
    this.budget.close();
  }

  private writeCount(): void {
    if (this.unlogged === 0) return;
    this.logger.warn(`${this.unlogged} more live tail(s) stopped in the last minute; their members join again`);
    this.unlogged = 0;
  }
}
