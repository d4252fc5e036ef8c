import { Logger } from '@nestjs/common';
import { LineBudget } from '../limits/line-budget.js';

/**
 * Failed session writes (`save`) or reads (`load`) in the logs: each one while they are
 * few, then one line with the count at the end of the minute. A state store that goes
 * away fails every connection's session at once (and each save is tried again): thousands
 * of sessions must not mean thousands of lines a second.
 */
export class SessionStoreLog {
  private readonly logger = new Logger('SessionKeeper');
  private readonly budget = new LineBudget(() => this.writeCount());
  private unlogged = 0;
  /** Of the unlogged saves, those not tried again (retries spent, or shutting down). */
  private givenUp = 0;
  private lastError = '';

  constructor(private readonly kind: 'save' | 'load') {}

  /**
   * `sessionId` was not saved (or loaded) because of `error`; a save says whether it is
   * tried again (one that is not leaves the stored session as of its last success).
   */
  hit(sessionId: string, error: string, retrying = false): void {
    if (this.budget.take()) {
      this.logger.warn(
        this.kind === 'save'
          ? `session ${sessionId} not saved: ${error}${retrying ? '; trying again' : ''}`
          : `session ${sessionId} not loaded: ${error}`,
      );
      return;
    }
    this.unlogged++;
    if (!retrying) this.givenUp++;
    this.lastError = error;
  }

  /** Shutdown: the count not written yet is written now. */
  close(): void {
    this.budget.flush();
  }

  private writeCount(): void {
    if (this.unlogged === 0) return;
    this.logger.warn(
      this.kind === 'save'
        ? `${this.unlogged} more session save(s) failed in the last minute, ${this.givenUp} of them not tried again ` +
            `(those sessions stay stored as of their last save); last error: ${this.lastError}`
        : `${this.unlogged} more session(s) not loaded in the last minute (those connections got new sessions); last error: ${this.lastError}`,
    );
    this.unlogged = 0;
    this.givenUp = 0;
  }
}
