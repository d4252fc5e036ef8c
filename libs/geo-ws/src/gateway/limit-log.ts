import { Logger } from '@nestjs/common';
import type { ClientConnection } from './client-connection.js';

/** How long a (connection, limit) stays quiet after its line, and the window of the per-limit budget. */
const WINDOW_MS = 60_000;
/** Lines per limit and window, over all connections: many abusive clients cannot flood the logs either. */
const LINES_PER_LIMIT = 10;

/** Logs limits that connections hit (rate, size, slow consumer, expiry...). */
export class LimitLog {
  private readonly logger = new Logger(LimitLog.name);
  /** When each (connection, limit) was last logged. */
  private readonly lastLogged = new Map<string, number>();
  /** Per limit: when its window started, lines written in it, hits left out of it. */
  private readonly budgets = new Map<string, { since: number; lines: number; suppressed: number }>();

  constructor(private readonly region: string) {}

  /**
   * One warning per connection and limit per minute, and at most ten per limit per minute
   * over all connections (the first line after a full window says how many were left
   * out): enough to see abuse in the logs without letting it flood them. Never logs tokens.
   */
  hit(connection: ClientConnection, limit: string): void {
    const key = `${connection.id}:${limit}`;
    const now = Date.now();
    if ((this.lastLogged.get(key) ?? 0) > now - WINDOW_MS) return;
    let budget = this.budgets.get(limit);
    if (!budget || budget.since <= now - WINDOW_MS) {
      const suppressed = budget?.suppressed ?? 0;
      this.budgets.set(limit, (budget = { since: now, lines: 0, suppressed: 0 }));
      if (suppressed > 0)
        this.logger.warn(`limit ${limit}: ${suppressed} more hit(s) left out of the log in region ${this.region} in the last minute`);
    }
    if (budget.lines >= LINES_PER_LIMIT) {
      budget.suppressed++;
      return;
    }
    budget.lines++;
    this.lastLogged.set(key, now);
    if (this.lastLogged.size > 10_000) this.lastLogged.clear();
    this.logger.warn(`limit ${limit}: connection ${connection.id} (sender ${connection.principal.id}) in region ${this.region}`);
  }
}
