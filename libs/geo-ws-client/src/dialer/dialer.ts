import type { ClientConnection } from '../client-connection.js';
import type { GeoCodec } from '../codec.js';
import { GeoClientError } from '../errors.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { invalidOptions, type ConnectionOptions } from './connection-options.js';
import {
  GeoClientCloseCode,
  GeoFrame,
  type Frame,
  type GeoRegion,
  type ReconnectFrame,
  type WebSocketConstructor,
  type WelcomeFrame,
} from '../protocol.js';
import { prepareDial } from './dial.js';
import type { DialerHooks } from './dialer-hooks.js';
import { Handover } from './handover.js';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, Heartbeat } from './heartbeat.js';
import type { RankedRegion } from './nearest-region.js';
import { RegionConnection, type Dial } from './region-connection.js';
import { ABNORMAL_CLOSURE, type Refusal } from './refusals.js';
import { RegionList } from './region-list.js';
import { RetrySchedule } from './retry-schedule.js';

/** Default of {@link GeoClientOptions.connectTimeoutMs}. */
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export type { DialerHooks };

/**
 * Connects to the nearest region and keeps a connection open: it reads the directory and
 * ranks the regions (all within `connectTimeoutMs`), opens one {@link RegionConnection} at a
 * time (two while it leaves a draining region), and after each ends decides when and where to try again ({@link RetrySchedule}:
 * backoff, penalties, failover). It tells a dead connection by its heartbeat, moves back
 * to a nearer region (`driftBackMs`) or away from a draining one, and gives up on a refused
 * token. A drain is handed over make-before-break ({@link Handover}). It owns the connect
 * deadline, the heartbeat, the drift check, the reconnect timer and the handover's bound;
 * the other parts use the connection through {@link ClientConnection}.
 */
export class Dialer implements ClientConnection {
  private readonly regions: RegionList;
  private readonly schedule: RetrySchedule;
  private readonly directory: GeoRegion[] | undefined;
  private readonly directoryUrl: string | undefined;
  private readonly Socket: WebSocketConstructor;
  private readonly codec: GeoCodec;
  /** The connection open or being opened; none between connections. */
  private connection: RegionConnection | undefined;
  /** A move away from a draining region under way: its two connections. */
  private handover: Handover | undefined;
  private readonly heartbeat: Heartbeat;
  private connectedRegion: string | undefined;
  /** When the current connection got its `geo.welcome`. */
  private openedAt: number | undefined;
  /** A 401 made the client ask the `token` function for a fresh token (once, until the next `geo.welcome`). */
  private freshTokenTried = false;
  /** The first connection's waiters (`connect()`), until it opens or the client gives up. */
  private firstOpen: { resolve(): void; reject(error: Error): void } | undefined;
  private drift: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline of `connect()` (`connectTimeoutMs`). */
  private connectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** Read when used, as the client always has. */
    private readonly options: GeoClientOptions,
    checked: ConnectionOptions,
    private readonly hooks: DialerHooks,
    /** Aborted by `close()`: the directory fetch, probes and handshake checks still running stop. */
    private readonly lifetime: AbortSignal,
  ) {
    ({ directory: this.directory, directoryUrl: this.directoryUrl, Socket: this.Socket, codec: this.codec } = checked);
    this.regions = new RegionList(options, lifetime);
    this.schedule = new RetrySchedule(options);
    this.heartbeat = new Heartbeat(
      options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
      {
        ping: (connection) => connection.send(GeoFrame.PING, { t: connection.pingSentAt }),
        dead: (connection) => connection.abandon(GeoClientCloseCode.SILENT),
      },
    );
  }

  /** Open and welcomed. */
  get isOpen(): boolean {
    return this.connection?.socketOpen === true && this.connection.welcomed;
  }

  /** The region of the last `geo.welcome`. */
  get region(): string | undefined {
    return this.connectedRegion;
  }

  /** Regions in failover order, with their measured RTT. */
  get rankedRegions(): readonly RankedRegion[] {
    return this.regions.ranked;
  }

  send(event: string, data: unknown): boolean {
    return this.connection?.send(event, data) ?? false;
  }

  sendEncoded(wire: string | Uint8Array): void {
    this.connection!.sendEncoded(wire);
  }

  /**
   * Reads the directory, ranks the regions and opens the first connection, all within
   * `connectTimeoutMs`. Settles when the first connection is open (`geo.welcome`), or
   * when the client gives up: the deadline, a refused token, `close()`.
   */
  async connect(): Promise<void> {
    if (this.closed()) throw new GeoClientError('CLOSED', 'the client was closed');
    const opened = new Promise<void>((resolve, reject) => (this.firstOpen = { resolve, reject }));
    // Settled by whatever gives up, maybe while this function still awaits something else.
    opened.catch(() => undefined);
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.hooks.stop(new GeoClientError('TIMEOUT', `GeoClient: no region accepted a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      const directory = this.directory ?? (await this.regions.readDirectory(this.directoryUrl!));
      if (this.closed()) return await opened;
      const { pinRegion } = this.options;
      if (pinRegion !== undefined && !directory.some((region) => region.name === pinRegion))
        throw invalidOptions(`pinRegion "${pinRegion}" is not in the directory (${directory.map((region) => region.name).join(', ')})`);
      const ranked = await this.regions.rank(directory);
      if (this.closed()) return await opened;
      this.regions.use(ranked);
    } catch (error) {
      this.hooks.stop(
        error instanceof GeoClientError ? error : new GeoClientError('UNAVAILABLE', (error as Error).message, { cause: error }),
      );
      return await opened;
    }
    if (this.options.driftBackMs) this.drift = setInterval(() => void this.driftBack(), this.options.driftBackMs);
    this.hooks.ranked();
    this.openNext();
    await opened;
  }

  /** See `GeoClient.moveTo`. */
  moveTo(regionName: string): void {
    const index = this.regions.indexOf(regionName);
    if (index === -1) throw new Error(`unknown region "${regionName}"`);
    if (this.closed()) return;
    this.regions.select(index);
    this.schedule.moved();
    this.endHandover(true);
    if (this.connection) return this.connection.close(GeoClientCloseCode.MOVING, 'moving region');
    // Between connections: go now rather than after the backoff delay.
    if (this.reconnectTimer !== undefined) this.scheduleOpen(0);
  }

  /** `close()`: the timers are cleared and the connection closed with 1000; nothing is told. */
  stop(): void {
    this.heartbeat.stop();
    this.endHandover(true);
    clearInterval(this.drift);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    this.drift = this.reconnectTimer = this.connectTimer = undefined;
    const connection = this.connection;
    this.connection = undefined;
    connection?.dispose();
  }

  /** `close()`, last: a `connect()` still under way rejects with `reason`. */
  failConnect(reason: GeoClientError): void {
    const first = this.firstOpen;
    this.firstOpen = undefined;
    first?.reject(reason);
  }

  private closed(): boolean {
    return this.lifetime.aborted;
  }

  /**
   * Gives up for good (a region refused the token): during `connect()` it rejects with
   * `error`; later the client reports `error` and closes (state `closed`).
   */
  private giveUp(error: GeoClientError): void {
    const connected = this.firstOpen === undefined;
    this.hooks.stop(error);
    if (connected) this.hooks.error({ code: error.code, message: error.message });
  }

  /**
   * Opens the next connection. If that fails before there is a socket (the `token`
   * function threw, no WebSocket class): during `connect()` the client closes and
   * `connect()` rejects; later it reports `error` and counts a failed attempt.
   */
  private openNext(): void {
    this.reconnectTimer = undefined;
    this.open().catch((error: unknown) => {
      if (this.closed()) return;
      if (this.firstOpen) {
        this.hooks.stop(
          error instanceof GeoClientError
            ? error
            : new GeoClientError('INTERNAL', `GeoClient: could not open a connection: ${(error as Error).message}`, { cause: error }),
        );
        return;
      }
      this.hooks.error({
        code: error instanceof GeoClientError ? error.code : 'INTERNAL',
        message: `GeoClient: could not open a connection: ${(error as Error).message}`,
      });
      this.onClose(ABNORMAL_CLOSURE);
    });
  }

  private scheduleOpen(delayMs: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.openNext(), delayMs);
  }

  private async open(): Promise<void> {
    if (this.closed()) return;
    const dial = await this.prepareDial();
    if (this.closed()) return;
    this.hooks.attempting();
    this.connection = this.track(dial);
  }

  /** The next attempt, to the current region (see {@link prepareDial}). */
  private prepareDial(): Promise<Dial> {
    const { options, regions, Socket, codec, lifetime } = this;
    return prepareDial({
      options,
      region: regions.current,
      url: regions.takeUrl(),
      sessionId: this.hooks.sessionId(),
      Socket,
      codec,
      lifetime,
    });
  }

  /** Opens a connection and routes what it tells. */
  private track(dial: Dial): RegionConnection {
    // What it tells after it is over counts only if it was the current connection then and
    // no other started since (a handshake check answers later).
    let wasCurrent = false;
    const connection: RegionConnection = new RegionConnection(dial, {
      frame: (frame) => this.onFrame(connection, frame),
      over: () => {
        if (this.connection !== connection) return;
        this.connection = undefined;
        wasCurrent = true;
      },
      closed: (code) => this.onEnded(connection, wasCurrent, code),
      refused: (refusal) => this.onEnded(connection, wasCurrent, ABNORMAL_CLOSURE, refusal),
    });
    return connection;
  }

  /**
   * A connection ended (`refusal`: its upgrade was refused). Of a handover, the connection
   * that is not the client's ends it: the next region failed before its welcome (the
   * draining one stays until the server closes it, then the usual reconnect), or the
   * drained one is gone. The client's connection ended during a handover: the next one, if
   * opening, is the next attempt at once.
   */
  private onEnded(connection: RegionConnection, wasCurrent: boolean, code: number, refusal?: Refusal): void {
    if (this.closed()) return;
    const handover = this.handover;
    if (handover && (connection === handover.next || connection === handover.old) && connection !== this.connection && !wasCurrent) {
      this.handover = undefined;
      handover.end();
      return;
    }
    if (!wasCurrent || this.connection !== undefined) return;
    if (handover) {
      this.handover = undefined;
      const next = handover.next;
      if (!handover.promoted && next && !next.isOver) return this.retryWith(next, code);
      handover.end();
      // Closed by the server before the next connection could start: go there at once.
      if (!handover.promoted) return this.onClose(code, GeoClientCloseCode.MOVING);
    }
    if (refusal) this.onRefused(connection.region, refusal);
    else this.onClose(code);
  }

  /**
   * A region refused the token (HTTP 401 or 403). With a `token` function, a 401 gets one
   * more attempt at once with a fresh token; otherwise the client gives up: no other
   * region or later attempt would accept this token either.
   */
  private onRefused(region: RankedRegion, refusal: Refusal): void {
    if (refusal.status === 401 && typeof this.options.token === 'function' && !this.freshTokenTried) {
      this.freshTokenTried = true;
      this.openNext();
      return;
    }
    this.giveUp(
      new GeoClientError(
        refusal.code,
        `GeoClient: region "${region.name}" refused the connection: ${refusal.code} (HTTP ${refusal.status}): ${refusal.message}`,
      ),
    );
  }

  /**
   * A connection ended with `code` (the server's, the client's own, or 1006). Every room
   * and every publish sent on it starts again on the next connection; when, and where, is
   * the {@link RetrySchedule}'s to say (as for `scheduleAs`, the code unless said otherwise).
   */
  private onClose(code: number, scheduleAs = code): void {
    const openFor = this.openedAt === undefined ? 0 : Date.now() - this.openedAt;
    this.openedAt = undefined;
    this.hooks.lost();
    if (this.closed()) return;
    const delayMs = this.schedule.afterClose(scheduleAs, openFor, this.regions);
    this.hooks.retrying({ attempt: this.schedule.attempt, delayMs, region: this.regions.current.name, code });
    this.scheduleOpen(delayMs);
  }

  /** The draining connection closed before the next one was welcomed: that one is the next attempt, already under way. */
  private retryWith(next: RegionConnection, code: number): void {
    this.openedAt = undefined;
    this.hooks.lost();
    this.hooks.retrying({ attempt: this.schedule.attempt, delayMs: 0, region: next.region.name, code });
    this.connection = next;
  }

  private onFrame(connection: RegionConnection, frame: Frame): void {
    if (connection !== this.connection) {
      const handover = this.handover;
      if (handover?.next === connection && frame.event === GeoFrame.WELCOME) this.promote(handover, frame.data as WelcomeFrame);
      else if (handover?.old === connection && handover.promoted) this.hooks.draining(frame);
      return;
    }
    switch (frame.event) {
      case GeoFrame.WELCOME:
        return this.onWelcome(connection, frame.data as WelcomeFrame);
      case GeoFrame.RECONNECT:
        return this.onDrain(connection, frame.data as ReconnectFrame);
      case GeoFrame.PONG:
        this.hooks.rtt(Date.now() - connection.pingSentAt);
        return;
      default:
        this.hooks.frame(frame);
        // A join answered on the new connection: maybe the last one the drained one waits for.
        if (this.handover?.promoted && (frame.event === GeoFrame.JOINED || frame.event === GeoFrame.ERROR || frame.event === GeoFrame.LEFT))
          this.settleHandover();
    }
  }

  /** `geo.welcome` on the client's connection (`handedOver`: it takes over from a draining one that is still open). */
  private onWelcome(connection: RegionConnection, welcome: WelcomeFrame, handedOver = false): void {
    connection.welcome();
    this.openedAt = Date.now();
    this.connectedRegion = welcome.region;
    this.schedule.welcomed();
    this.freshTokenTried = false;
    this.heartbeat.watch(connection, welcome.idle_timeout_ms);
    // Nothing is joined on the new connection yet: rooms join again, and what is
    // unacknowledged is sent again once its room is joined (acks on the old one still count).
    if (handedOver) this.hooks.lost();
    this.hooks.welcomed(welcome, connection.region);
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.firstOpen?.resolve();
    this.firstOpen = undefined;
  }

  /**
   * `geo.reconnect`: the region drains. The next attempt goes to our next-nearest region
   * (the server's suggestion only when we know no other), and opens while this connection
   * stays the client's, so nothing pauses (make before break). A connection not welcomed
   * yet just moves, as before.
   */
  private onDrain(connection: RegionConnection, reconnect: ReconnectFrame): void {
    if (this.handover?.old === connection) return; // told twice
    this.endHandover(); // the region we just moved to drains too: the one before goes now
    this.regions.drain(this.connectedRegion, reconnect.url);
    this.schedule.draining();
    if (!connection.welcomed) return connection.close(GeoClientCloseCode.MOVING, 'moving on drain');
    const handover = new Handover(connection);
    this.handover = handover;
    void this.dialNext(handover);
  }

  /** Opens the handover's connection; if that fails before there is a socket, the draining one stays until the server closes it. */
  private async dialNext(handover: Handover): Promise<void> {
    try {
      const dial = await this.prepareDial();
      if (!this.closed() && this.handover === handover) handover.next = this.track(dial);
    } catch {
      if (this.handover === handover) this.handover = undefined;
    }
  }

  /** The next region welcomed the handover's connection: it is the client's from now on. */
  private promote(handover: Handover, welcome: WelcomeFrame): void {
    this.connection = handover.next;
    handover.promote(() => this.endHandover());
    this.onWelcome(handover.next!, welcome, true);
    this.settleHandover();
  }

  /** Every room is joined on the new connection: the drained one closes. */
  private settleHandover(): void {
    if (this.handover?.promoted && this.hooks.settled()) this.endHandover();
  }

  /** Ends the handover under way, if any (`drop`: `close()`, or a move elsewhere: the connection not the client's goes at once). */
  private endHandover(drop = false): void {
    const handover = this.handover;
    this.handover = undefined;
    if (drop) handover?.dispose();
    else handover?.end();
  }

  /** Every `driftBackMs`: measures the regions again and moves to the nearest if it is not this one. */
  private async driftBack(): Promise<void> {
    if (!this.isOpen || this.options.pinRegion || this.options.regionOrder) return;
    const ranked = await this.regions.remeasure();
    if (this.closed()) return;
    const nearest = ranked.find((region) => Number.isFinite(region.rttMs));
    this.regions.use(ranked, this.connectedRegion);
    if (nearest && nearest.name !== this.connectedRegion) this.moveTo(nearest.name);
  }
}
