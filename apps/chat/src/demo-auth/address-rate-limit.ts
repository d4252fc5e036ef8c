import { isIPv6 } from 'node:net';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Buckets kept before the full ones (equivalent to no bucket) are swept. */
const SWEEP_AT = 10_000;

/**
 * A token bucket per client address: `perMinute` tokens, refilled evenly over a minute,
 * so a client may take `perMinute` at once and then one every `60 / perMinute` s. IPv6
 * addresses count per /64 (one host usually holds a whole /64). Memory stays bounded:
 * full buckets are dropped, and past 10,000 addresses the oldest are too.
 */
export class AddressRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(private readonly perMinute: number) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `address`: `0` when served, else the seconds until the next token. */
  take(address: string, now = Date.now()): number {
    const key = keyOf(address);
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, updatedAt: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.updatedAt) * this.perMs);
    bucket.updatedAt = now;
    this.buckets.delete(key); // re-inserted last: the map stays in least-recently-used order
    this.buckets.set(key, bucket);
    if (this.buckets.size > SWEEP_AT) this.sweep(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  /** Addresses tracked (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * this.perMs >= this.perMinute) this.buckets.delete(key);
    }
    // Still too many (a flood from many addresses): forget the least recently seen.
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= SWEEP_AT / 2) break;
      this.buckets.delete(key);
    }
  }
}

/** IPv4 (also IPv4-mapped IPv6) as is; IPv6 by its first 64 bits. */
function keyOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
