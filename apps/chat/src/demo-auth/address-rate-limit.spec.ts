import { describe, expect, it } from '@jest/globals';
import { AddressRateLimit } from './address-rate-limit.js';

describe('per-address token bucket of /demo/token', () => {
  it('serves a burst of perMinute, then one token every 60/perMinute s, with the wait until the next', () => {
    const limit = new AddressRateLimit(30);
    const t = 1_000_000;
    for (let i = 0; i < 30; i++) expect(limit.take('10.0.0.1', t)).toBe(0);
    expect(limit.take('10.0.0.1', t)).toBe(2);
    expect(limit.take('10.0.0.1', t + 1000)).toBe(1);
    expect(limit.take('10.0.0.1', t + 2000)).toBe(0);
    expect(limit.take('10.0.0.1', t + 2000)).toBeGreaterThan(0);
    expect(limit.take('10.0.0.2', t)).toBe(0); // another address has its own bucket
  });

  it('counts IPv4-mapped IPv6 as IPv4 and IPv6 per /64', () => {
    const limit = new AddressRateLimit(2);
    expect(limit.take('10.0.0.1', 0)).toBe(0);
    expect(limit.take('::ffff:10.0.0.1', 0)).toBe(0);
    expect(limit.take('10.0.0.1', 0)).toBeGreaterThan(0);
    expect(limit.take('2001:db8:1:2::1', 0)).toBe(0);
    expect(limit.take('2001:db8:1:2:ffff::9', 0)).toBe(0);
    expect(limit.take('2001:0db8:0001:0002:0:0:0:5', 0)).toBeGreaterThan(0); // same /64
    expect(limit.take('2001:db8:1:3::1', 0)).toBe(0); // another /64
  });

  it('keeps its memory bounded under a flood from many addresses', () => {
    const limit = new AddressRateLimit(5);
    for (let i = 0; i < 50_000; i++) limit.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i);
    expect(limit.size).toBeLessThanOrEqual(10_001);
  });
});
