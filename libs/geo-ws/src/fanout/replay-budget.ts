import { setTimeout as sleep } from 'node:timers/promises';
import { TokenBucket } from '../limits/token-bucket.js';

/** The budgets a replay runs under (see `GeoWsReplayLimits`). */
export interface ReplayLimits {
  /** Events fetched per read. */
  batchSize: number;
  perInstance: { perSecond: number; burst: number };
  concurrent: number;
  highWaterBytes: number;
  /** Live events each feed holds for resumes from memory (0: none). */
  recentEvents: number;
  /** How often held events are swept: each is held one to two sweeps. */
  recentMs: number;
}

/** What a replay needs to know about the member it replays to. */
export interface ReplayTarget {
  /** Bytes queued for the member and not yet sent. */
  readonly backlogBytes: number;
  /** The member's own replay allowance, shared by all its rooms. */
  readonly replayAllowance: TokenBucket;
}

/** Longest single sleep while waiting, so a replay notices promptly that it was cancelled. */
const MAX_SLEEP_MS = 50;

/**
 * One instance's replay budget: at most `concurrent` history reads at once, events per second
 * for the instance and for each connection, and flow control (a replay reads no further
 * while its socket holds more than `highWaterBytes`). Live events are never paced: only
 * history is, so a flood of resumes cannot starve members who are already live.
 */
export class ReplayBudget {
  private readonly instance: TokenBucket;
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly limits: ReplayLimits) {
    this.instance = new TokenBucket(limits.perInstance);
  }

  /**
   * Runs one history read, at most `concurrent` at once on this instance (the rest wait
   * their turn). Only the read holds a slot: a replay waiting for its client to drain
   * holds none, so clients that stop reading cannot block everyone else's resumes.
   */
  async read<T>(fetch: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrent) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      return await fetch();
    } finally {
      const next = this.queue.shift();
      if (next)
        next(); // the slot passes straight to the next read
      else this.running--;
    }
  }

  /**
   * Waits until `target` may be sent another page: both allowances out of debt and its
   * socket drained below the high-water mark. False if `wanted()` turned false meanwhile.
   */
  async ready(target: ReplayTarget, wanted: () => boolean): Promise<boolean> {
    for (;;) {
      if (!wanted()) return false;
      const wait = Math.max(
        this.instance.msUntilAvailable(),
        target.replayAllowance.msUntilAvailable(),
        this.isFull(target) ? MAX_SLEEP_MS : 0,
      );
      if (wait === 0) return true;
      await sleep(Math.min(wait, MAX_SLEEP_MS));
    }
  }

  /** Waits until `target`'s socket is below the high-water mark; false if `wanted()` turned false. */
  async drained(target: ReplayTarget, wanted: () => boolean): Promise<boolean> {
    while (this.isFull(target)) {
      if (!wanted()) return false;
      await sleep(MAX_SLEEP_MS);
    }
    return wanted();
  }

  isFull(target: ReplayTarget): boolean {
    return target.backlogBytes > this.limits.highWaterBytes;
  }

  /** Charges a page that was read. */
  spend(target: ReplayTarget, events: number): void {
    this.instance.spend(events);
    target.replayAllowance.spend(events);
  }
}
