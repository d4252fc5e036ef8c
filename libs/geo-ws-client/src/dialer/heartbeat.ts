import type { RegionConnection } from './region-connection.js';

/** Default of the `heartbeatMs` option: ping after this long without a frame. */
export const DEFAULT_HEARTBEAT_MS = 5000;
/** Default of the `heartbeatTimeoutMs` option: how long the ping may go unanswered. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5000;
/**
 * A connection that receives all the time never needs a ping to prove it is alive, but the
 * server closes one that sends nothing for `limits.idleTimeoutMs` (15 min by default, told
 * in `geo.welcome` as `idle_timeout_ms`): the client sends a ping at least this often (or
 * every `heartbeatMs`, if longer), and within half the server's idle timeout.
 */
export const KEEPALIVE_MS = 60_000;

/** What the heartbeat does to the connection it watches. */
export interface HeartbeatActions {
  /** Sends `geo.ping` on it. */
  ping(connection: RegionConnection): void;
  /** Nothing arrived on it for `heartbeatMs + heartbeatTimeoutMs`: it is dead. */
  dead(connection: RegionConnection): void;
}

/**
 * The liveness of the welcomed connection, on one timer the dialer owns: after `intervalMs`
 * with no frame received the client sends `geo.ping`; after `timeoutMs` more with still
 * nothing (any frame counts, not only the pong: a busy server's pong waits behind the
 * events queued before it) the connection is dead. So a region that stops answering
 * without closing its sockets is left within `intervalMs + timeoutMs` of its last frame,
 * and a connection that keeps receiving sends no ping at all (but one every
 * {@link KEEPALIVE_MS}, for the server's idle timeout).
 *
 * The timer is lazy: it is not moved on each frame, it wakes at the earliest moment
 * something could be due and looks at when the last frame arrived. A busy connection costs
 * one timer callback per `intervalMs` and no frame.
 */
export class Heartbeat {
  private watched: RegionConnection | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** How long the watched connection may send nothing. */
  private keepaliveMs = KEEPALIVE_MS;

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly actions: HeartbeatActions,
  ) {}

  /**
   * Watches `connection` (just welcomed, by a server that closes connections silent for
   * `idleTimeoutMs`, if it said so) from now on; the one watched before is let go.
   */
  watch(connection: RegionConnection, idleTimeoutMs?: number): void {
    this.watched = connection;
    const keepalive = Math.max(KEEPALIVE_MS, this.intervalMs);
    this.keepaliveMs = idleTimeoutMs && idleTimeoutMs > 0 ? Math.min(keepalive, Math.floor(idleTimeoutMs / 2)) : keepalive;
    this.wakeAt(this.nextDue(connection));
  }

  /** No timer is left. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = this.watched = undefined;
  }

  private wakeAt(at: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), Math.max(0, at - Date.now()));
  }

  private check(): void {
    this.timer = undefined;
    const connection = this.watched;
    // Closing (the dialer hears of its end) or over: nothing more to watch.
    if (!connection?.socketOpen || connection.isOver) return void (this.watched = undefined);
    const now = Date.now();
    const heard = connection.lastFrameAt;
    if (now - heard >= this.intervalMs + this.timeoutMs) {
      this.watched = undefined;
      return this.actions.dead(connection);
    }
    const unanswered = connection.pingSentAt > heard;
    if ((now - heard >= this.intervalMs && !unanswered) || now - connection.lastSentAt >= this.keepaliveMs) {
      connection.pingSentAt = connection.lastSentAt = now;
      this.actions.ping(connection);
    }
    this.wakeAt(this.nextDue(connection));
  }

  /** The earliest moment a ping or the verdict may be due. */
  private nextDue(connection: RegionConnection): number {
    const heard = connection.lastFrameAt;
    const silence = connection.pingSentAt > heard ? heard + this.intervalMs + this.timeoutMs : heard + this.intervalMs;
    return Math.min(silence, connection.lastSentAt + this.keepaliveMs);
  }
}
