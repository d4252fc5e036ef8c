import type { WebSocket } from 'ws';
import { GeoCloseCode } from '../protocol/wire.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import type { ClientConnection } from './client-connection.js';
import type { LimitLog } from './limit-log.js';

/** Heartbeats are spread over this many turns per `heartbeatMs`. */
const HEARTBEAT_SLICES = 10;

/** How often the memory held for slow readers is checked. */
const BUFFER_SWEEP_MS = 1000;

/**
 * The timed upkeep of a server's open connections, on two timers started with the server:
 * heartbeats (pings, and closing the idle and the silent) and the bound on memory held for
 * clients that do not read. Reads the server's map of connections; adds and removes none.
 */
export class ConnectionUpkeep {
  /** Connections accepted so far and heartbeat turns taken: which slice a connection is in, which slice is checked. */
  private acceptedCount = 0;
  private heartbeatTurn = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private bufferSweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ResolvedGeoWsOptions,
    /** The server's open connections, by socket. */
    private readonly connections: ReadonlyMap<WebSocket, ClientConnection>,
    private readonly limitLog: LimitLog,
  ) {}

  /** Puts a connection just accepted in the next heartbeat slice. */
  accepted(connection: ClientConnection): void {
    connection.heartbeatSlice = this.acceptedCount++ % HEARTBEAT_SLICES;
  }

  start(): void {
    this.heartbeat = setInterval(() => this.checkHeartbeats(), this.options.heartbeatMs / HEARTBEAT_SLICES);
    this.heartbeat.unref();
    this.bufferSweep = setInterval(() => this.sweepBuffers(), BUFFER_SWEEP_MS);
    this.bufferSweep.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.bufferSweep);
  }

  /**
   * Bounds the memory held for clients that do not read: one over its own limit, or the
   * biggest ones while all of them together are over the instance's limit, are closed as
   * slow consumers (live sends check the per-connection limit too, at once).
   */
  private sweepBuffers(): void {
    const { maxBufferedBytes, maxBufferedBytesTotal } = this.options.limits;
    let total = 0;
    const holding: ClientConnection[] = [];
    for (const connection of this.connections.values()) {
      const backlog = connection.backlogBytes;
      if (backlog === 0 || !connection.isOpen) continue;
      if (backlog > maxBufferedBytes) {
        connection.closeSlowConsumer();
        continue;
      }
      total += backlog;
      holding.push(connection);
    }
    if (total <= maxBufferedBytesTotal) return;
    holding.sort((a, b) => b.backlogBytes - a.backlogBytes);
    for (const connection of holding) {
      if (total <= maxBufferedBytesTotal) break;
      total -= connection.backlogBytes;
      connection.closeSlowConsumer();
    }
  }

  /**
   * Pings one slice of the connections per turn, so each is pinged once per `heartbeatMs`
   * without one burst of a write per connection (6,700 pings held a region's event loop
   * for ~80 ms at 20,000 clients).
   */
  private checkHeartbeats(): void {
    const { idleTimeoutMs } = this.options.limits;
    const slice = this.heartbeatTurn++ % HEARTBEAT_SLICES;
    for (const connection of this.connections.values()) {
      if (connection.heartbeatSlice !== slice) continue;
      if (idleTimeoutMs > 0 && Date.now() - connection.lastFrameAt > idleTimeoutMs) {
        this.limitLog.hit(connection, 'IDLE_TIMEOUT');
        connection.close(GeoCloseCode.IDLE_TIMEOUT, 'idle');
        continue;
      }
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
      connection.ping();
    }
  }
}
