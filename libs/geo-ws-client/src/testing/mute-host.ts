// Test support for the client's specs; not part of the package (excluded from its build).
import net from 'node:net';
import type { GeoRegion } from '../protocol.js';

/**
 * A host that accepts TCP connections and never answers the WebSocket upgrade (a dead
 * host behind a load balancer).
 */
export async function startMuteHost(name = 'mute'): Promise<{ region: GeoRegion; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    region: { name, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` },
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
