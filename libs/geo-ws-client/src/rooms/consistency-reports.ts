import type { ClientConnection } from '../client-connection.js';
import { reportInterval, type ConsistencyCounter } from './consistency.js';

/** The client's consistency report (docs/PROTOCOL.md); the server counts it in its metrics. */
export const REPORT_FRAME = 'geo.report';

/**
 * Sends what the client counted (events, duplicates, regressions, gaps) every `report_ms`
 * of the connection's `geo.welcome`, for the server's metrics; none without it. The timer
 * does not keep a Node process alive, and is the only one it owns.
 */
export class ConsistencyReports {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly counter: ConsistencyCounter,
    private readonly connection: Pick<ClientConnection, 'send'>,
  ) {}

  /** `geo.welcome`: report every `reportMs` (if it is a usable interval) on this connection. */
  start(reportMs: unknown): void {
    this.stop();
    const interval = reportInterval(reportMs);
    if (interval === undefined) return;
    this.timer = setInterval(() => this.report(), interval);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** The connection ended: no report until the next `geo.welcome`. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** `close()`: what happened since the last report goes in a last one (if reports run), then no more. */
  close(): void {
    if (this.timer !== undefined) this.report();
    this.stop();
  }

  /** One `geo.report` with the counts since the last one; nothing when nothing happened or the socket is not open. */
  private report(): void {
    const delta = this.counter.peekReport();
    if (delta && this.connection.send(REPORT_FRAME, delta)) this.counter.markReported();
  }
}
