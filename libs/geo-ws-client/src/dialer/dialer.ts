import type { ClientConnection } from '../client-connection.js';
import { jsonCodec, type GeoCodec } from '../codec.js';
import { GeoClientError } from '../errors.js';
import type { GeoClientEvents } from '../geo-client-events.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { invalidOptions, type ConnectionOptions } from './connection-options.js';
import {
  BEARER_PREFIX,
  GeoClientCloseCode,
  GeoFrame,
  type ErrorFrame,
  type Frame,
  type GeoRegion,
  type ReconnectFrame,
  type WebSocketConstructor,
  type WelcomeFrame,
} from '../protocol.js';
import type { RankedRegion } from './nearest-region.js';
import { RegionConnection } from './region-connection.js';
import { ABNORMAL_CLOSURE, type Refusal } from './refusals.js';
import { RegionList } from './region-list.js';
import { RetrySchedule } from './retry-schedule.js';

/** Defaults of {@link GeoClientOptions.heartbeatMs} and {@link GeoClientOptions.connectTimeoutMs}. */
const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** The longest wait for `geo.welcome` (otherwise twice `heartbeatMs`). */
const MAX_WELCOME_WAIT_MS = 10_000;

/** What the dialer tells the client, and asks of it. */
export interface DialerHooks {
  /** The session to ask back on each connection (`session` query parameter). */
  sessionId(): string | undefined;
  /** The regions are ranked: the first attempt follows now. */
  ranked(): void;
  /** An attempt starts: the state is `connecting` until the first connection opens, `reconnecting` after. */
  attempting(): void;
  /** `geo.welcome`: the connection is open (the client updates its state and joins its rooms again). */
  welcomed(welcome: WelcomeFrame, region: RankedRegion): void;
  /** Any frame of the connection other than `geo.welcome`, `geo.reconnect` and `geo.pong`. */
  frame(frame: Frame): void;
  /** `geo.pong`: the round trip of the last `geo.ping`, in ms. */
  rtt(ms: number): void;
  /** The connection ended: whatever was sent on it is unanswered. */
  lost(): void;
  /** The next attempt is scheduled. */
  retrying(reconnect: GeoClientEvents['reconnect']): void;
  /** A failure of the dialer's own that does not stop it, or the reason it stopped after the first connection. */
  error(error: ErrorFrame): void;
  /** Gives up for good: the client stops, and everything waiting rejects with `reason`. */
  stop(reason: GeoClientError): void;
}

/**
 * Connects to the nearest region and keeps a connection open: it reads the directory and
 * ranks the regions (all within `connectTimeoutMs`), opens one {@link RegionConnection} at a
 * time, and after each ends decides when and where to try again ({@link RetrySchedule}:
 * backoff, penalties, failover). It tells a dead connection by its heartbeat, moves back
 * to a nearer region (`driftBackMs`) or away from a draining one, and gives up on a refused
 * token. It owns the connect deadline, the heartbeat, the drift check and the reconnect
 * timer; the other parts use the connection through {@link ClientConnection}.
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
  private connectedRegion: string | undefined;
  /** When the current connection got its `geo.welcome`. */
  private openedAt: number | undefined;
  private pingSentAt = 0;
  /** A 401 made the client ask the `token` function for a fresh token (once, until the next `geo.welcome`). */
  private freshTokenTried = false;
  /** The first connection's waiters (`connect()`), until it opens or the client gives up. */
  private firstOpen: { resolve(): void; reject(error: Error): void } | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
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
    const heartbeatMs = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.heartbeat = setInterval(() => this.checkHeartbeat(heartbeatMs), heartbeatMs);
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
    if (this.connection) return this.connection.close(GeoClientCloseCode.MOVING, 'moving region');
    // Between connections: go now rather than after the backoff delay.
    if (this.reconnectTimer !== undefined) this.scheduleOpen(0);
  }

  /** `close()`: the timers are cleared and the connection closed with 1000; nothing is told. */
  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.drift);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    this.heartbeat = this.drift = this.reconnectTimer = this.connectTimer = undefined;
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
    const region = this.regions.current;
    const url = this.regions.takeUrl();
    for (const [key, value] of Object.entries(this.options.query ?? {})) url.searchParams.set(key, value);
    const sessionId = this.hooks.sessionId();
    if (sessionId) url.searchParams.set('session', sessionId);
    let token: string | undefined;
    try {
      token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    } catch (error) {
      throw new GeoClientError('UNAUTHORIZED', `the token function failed: ${(error as Error).message}`);
    }
    if (this.closed()) return;
    this.hooks.attempting();
    // JSON needs no subprotocol (the server's default); another codec is always asked for.
    const protocols = token
      ? [this.codec.subprotocol, `${BEARER_PREFIX}${token}`]
      : this.codec === jsonCodec
        ? undefined
        : [this.codec.subprotocol];
    const heartbeatMs = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const dial = {
      region,
      url,
      token,
      protocols,
      Socket: this.Socket,
      codec: this.codec,
      welcomeWaitMs: Math.min(MAX_WELCOME_WAIT_MS, 2 * heartbeatMs),
      lifetime: this.lifetime,
    };
    // What it tells after it is over counts only while no other connection started
    // (a handshake check answers later) and the client is not closed.
    const current = (): boolean => !this.closed() && this.connection === undefined;
    this.connection = new RegionConnection(dial, {
      frame: (frame) => this.onFrame(frame, region),
      over: () => (this.connection = undefined),
      closed: (code) => {
        if (current()) this.onClose(code);
      },
      refused: (refusal) => {
        if (current()) this.onRefused(region, refusal);
      },
    });
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
   * the {@link RetrySchedule}'s to say.
   */
  private onClose(code: number): void {
    const openFor = this.openedAt === undefined ? 0 : Date.now() - this.openedAt;
    this.openedAt = undefined;
    this.hooks.lost();
    if (this.closed()) return;
    const delayMs = this.schedule.afterClose(code, openFor, this.regions);
    this.hooks.retrying({ attempt: this.schedule.attempt, delayMs, region: this.regions.current.name, code });
    this.scheduleOpen(delayMs);
  }

  private onFrame(frame: Frame, region: RankedRegion): void {
    switch (frame.event) {
      case GeoFrame.WELCOME: {
        const welcome = frame.data as WelcomeFrame;
        this.connection?.welcome();
        this.openedAt = Date.now();
        this.connectedRegion = welcome.region;
        this.schedule.welcomed();
        this.freshTokenTried = false;
        this.hooks.welcomed(welcome, region);
        clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        this.firstOpen?.resolve();
        this.firstOpen = undefined;
        return;
      }
      case GeoFrame.RECONNECT:
        // The region drains: move to our next-nearest region now, before it closes us.
        // The server's suggestion is used only when we know no other region.
        this.regions.drain(this.connectedRegion, (frame.data as ReconnectFrame).url);
        this.schedule.draining();
        this.connection?.close(GeoClientCloseCode.MOVING, 'moving on drain');
        return;
      case GeoFrame.PONG:
        this.hooks.rtt(Date.now() - this.pingSentAt);
        return;
      default:
        this.hooks.frame(frame);
    }
  }

  /** Pings every `heartbeatMs`; a connection with no frame for twice as long is dead. */
  private checkHeartbeat(heartbeatMs: number): void {
    const connection = this.connection;
    if (!connection?.socketOpen) return;
    if (Date.now() - connection.lastFrameAt > 2 * heartbeatMs) return connection.abandon(GeoClientCloseCode.SILENT);
    this.pingSentAt = Date.now();
    this.send(GeoFrame.PING, { t: this.pingSentAt });
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
