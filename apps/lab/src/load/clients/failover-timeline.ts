import { FailoverField as F } from '../load.types.js';

/**
 * Records the milestones of each failover of one client into a flat array
 * (`ClientLog.failovers`): a few numbers per failover, nothing per event but one
 * comparison. The adapter calls it where it sees each milestone; calls outside a failover
 * (the first connection) are ignored.
 */
export class FailoverTimeline {
  readonly values: number[] = [];
  /** Offset of the failover under way, -1 when none. */
  private current = -1;
  /** Offset of the last finished failover still waiting for its first event, -1 when none. */
  private awaitingEvent = -1;

  /** The SDK's state left `open`: a failover starts (once until it ends). */
  left(now = Date.now()): void {
    if (this.current >= 0) return;
    this.current = this.values.length;
    this.awaitingEvent = -1;
    // FAILOVER_STRIDE numbers, in FailoverField order.
    this.values.push(now, 0, 0, 0, 0, 0, 0, 0);
  }

  /** A `reconnect` event: the next attempt waits `delayMs`. */
  retrying(delayMs: number): void {
    if (this.current >= 0) this.values[this.current + F.backoffMs] += delayMs;
  }

  /** A socket is constructed: an attempt starts; the milestones after it start over. */
  attempt(now = Date.now()): void {
    const c = this.current;
    if (c < 0) return;
    this.values[c + F.attempts]++;
    this.values[c + F.attemptAt] = now;
    this.values[c + F.socketOpenAt] = 0;
    this.values[c + F.welcomeAt] = 0;
  }

  /** The last attempt's socket opened. */
  socketOpen(now = Date.now()): void {
    if (this.current >= 0) this.values[this.current + F.socketOpenAt] = now;
  }

  /** The SDK's state is `open` again. */
  welcomed(now = Date.now()): void {
    if (this.current >= 0) this.values[this.current + F.welcomeAt] = now;
  }

  /** Back in every room: the failover ends; the next event delivered is its first. */
  joined(now = Date.now()): void {
    const c = this.current;
    if (c < 0) return;
    this.values[c + F.joinedAt] = now;
    this.awaitingEvent = c;
    this.current = -1;
  }

  /** An event was delivered (called on every delivery: one comparison unless a failover just ended). */
  event(): void {
    if (this.awaitingEvent < 0) return;
    this.values[this.awaitingEvent + F.firstEventAt] = Date.now();
    this.awaitingEvent = -1;
  }
}
