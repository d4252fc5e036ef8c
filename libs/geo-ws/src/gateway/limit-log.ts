import { Logger } from '@nestjs/common';
import type { ClientConnection } from './client-connection.js';

/** Logs limits that connections hit (rate, size, slow consumer, expiry...). */
export class LimitLog {
  private readonly logger = new Logger(LimitLog.name);
  /** When each (connection, limit) was last logged. */
  private readonly lastLogged = new Map<string, number>();

  constructor(private readonly region: string) {}

  /**
   * One warning per connection and limit per minute: enough to see abuse in the logs
   * without letting a flood of refused frames flood them too. Never logs tokens.
   */
  hit(connection: ClientConnection, limit: string): void {
    const key = `${connection.id}:${limit}`;
    const now = Date.now();
    if ((this.lastLogged.get(key) ?? 0) > now - 60_000) return;
    this.lastLogged.set(key, now);
    if (this.lastLogged.size > 10_000) this.lastLogged.clear();
    this.logger.warn(`limit ${limit}: connection ${connection.id} (sender ${connection.principal.id}) in region ${this.region}`);
  }
}
