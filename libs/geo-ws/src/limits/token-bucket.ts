/** A token bucket: `burst` tokens at once, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private updatedAt = Date.now();

  constructor(private readonly rate: { perSecond: number; burst: number }) {
    this.tokens = rate.burst;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Takes up to `count` tokens, as many as there are; returns how many it took. A frame that
   * stands for several requests (a `geo.join` of many rooms) pays for each, as separate frames would.
   */
  takeUpTo(count: number, now = Date.now()): number {
    this.refill(now);
    const taken = Math.max(0, Math.min(count, Math.floor(this.tokens)));
    this.tokens -= taken;
    return taken;
  }

  /**
   * Spends `count` tokens even past empty: work already done (a page of history read) is
   * paid for afterwards, and the debt delays the next piece (see `msUntilAvailable`).
   */
  spend(count: number, now = Date.now()): void {
    this.refill(now);
    this.tokens -= count;
  }

  /** Milliseconds until a token is available (0 when one is). */
  msUntilAvailable(now = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate.perSecond) * 1000);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.rate.perSecond);
    this.updatedAt = now;
  }
}
