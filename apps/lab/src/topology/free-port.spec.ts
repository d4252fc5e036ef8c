import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePorts } from './free-port.js';

describe('freePorts', () => {
  it('hands out distinct ports below the ephemeral range, each free to bind, never the same twice', async () => {
    const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const first = await freePorts(20);
    const second = await freePorts(20);
    const all = [...first, ...second];
    expect(new Set(all).size).toBe(40);
    for (const port of all) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(ephemeralLow);
    }
    // A listen(0) (what a link proxy does) lands in the ephemeral range, so it cannot take one of them.
    const proxy = createServer();
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    expect((proxy.address() as { port: number }).port).toBeGreaterThanOrEqual(ephemeralLow);
    // Each one can still be bound.
    for (const port of first) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
});
