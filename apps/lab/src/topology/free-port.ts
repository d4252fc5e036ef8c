import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/** Lowest port handed out: below it sit well-known services (Redis 6379, NATS 4222, 8222). */
const LOWEST_PORT = 10_000;
/** Ports handed out by this process, not offered again (a caller may not have bound them yet). */
const handedOut = new Set<number>();
const REMEMBERED = 2_000;
/** The first port of the kernel's ephemeral range (read once: it does not change while the lab runs). */
const EPHEMERAL_LOW = ephemeralLow();

/** A TCP port free on `host` right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port;
}

/**
 * `count` distinct free ports on `host`, each checked by listening on it. They lie below
 * the kernel's ephemeral range where one is known (Linux): a port from that range could be
 * taken between this check and the caller's own bind by any `listen(0)` (a link proxy) or
 * outgoing connection's source port, and the server would then fail with "address in use".
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const below = EPHEMERAL_LOW;
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > count * 50) throw new Error(`freePorts: found ${ports.length} of ${count} free ports on ${host} below ${below}`);
      const wanted = below === undefined ? 0 : LOWEST_PORT + Math.floor(Math.random() * (below - LOWEST_PORT));
      if (handedOut.has(wanted)) continue;
      const server = createServer();
      const port = await new Promise<number | undefined>((resolve) => {
        server.once('error', () => resolve(undefined)); // taken (or not ours to take): try another
        server.listen(wanted, host, () => resolve((server.address() as { port: number }).port));
      });
      if (port === undefined) continue;
      servers.push(server);
      ports.push(port);
      remember(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** The first port of the kernel's ephemeral range, if it leaves room below it. */
function ephemeralLow(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return low > LOWEST_PORT + 1_000 ? low : undefined;
  } catch {
    return undefined; // not Linux: let the OS pick
  }
}

function remember(port: number): void {
  handedOut.add(port);
  if (handedOut.size > REMEMBERED) handedOut.delete(handedOut.values().next().value as number);
}
