import { backoffDelay, penaltyDelay } from './dialer/backoff.js';
import { jsonCodec, type GeoCodec } from './codec.js';
import { ClientEvents, type ConnectionState, type EventDelivery, type GeoClientEvents, type RoomHandler } from './geo-client-events.js';
import { checkOptions, invalidOptions, type GeoClientOptions } from './geo-client-options.js';
import { ConsistencyCounter, type ConsistencyCounts } from './rooms/consistency.js';
import { GeoClientError } from './errors.js';
import { httpProbe, rankRegions, withDeadline, type RankedRegion } from './dialer/nearest-region.js';
import { checkRegions } from './dialer/regions.js';
import { TokenRefresher } from './token/token-refresher.js';
import { Outbox } from './outbox/outbox.js';
import { RoomTracker } from './rooms/room-tracker.js';
import { ConsistencyReports } from './rooms/consistency-reports.js';
import type { ClientConnection } from './client-connection.js';
import {
  BEARER_PREFIX,
  GeoClientCloseCode,
  GeoCloseCode,
  GeoFrame,
  type AckFrame,
  type AuthedFrame,
  type ErrorFrame,
  type Frame,
  type GeoEnvelope,
  type GeoRegion,
  type JoinedFrame,
  type LeftFrame,
  type ReconnectFrame,
  type WelcomeFrame,
  type WebSocketConstructor,
  type WebSocketLike,
} from './protocol.js';

export { GeoClientError };
export type { ConnectionState, EventDelivery, GeoClientEvents, GeoClientOptions, RoomHandler };

/** `WebSocket.OPEN`. */
const OPEN = 1;
/** The close code a WebSocket reports when the connection ended without a close frame. */
const ABNORMAL_CLOSURE = 1006;
/**
 * Closes the server makes for this client's own conduct: reconnecting at once would only
 * repeat them. The client reconnects to the same region after {@link penaltyDelay}.
 */
const PENALTY_CODES: ReadonlySet<number> = new Set([
  GeoCloseCode.POLICY_VIOLATION,
  GeoCloseCode.MESSAGE_TOO_BIG,
  GeoCloseCode.SLOW_CONSUMER,
  GeoCloseCode.TOO_MANY_CONNECTIONS,
]);
/**
 * The HTTP status of an upgrade refused because the user has too many connections to the
 * region (`TOO_MANY_CONNECTIONS`): handled as a close with {@link GeoCloseCode.TOO_MANY_CONNECTIONS}.
 */
const TOO_MANY_CONNECTIONS_STATUS = 429;
/** A connection that stayed open this long ends a run of {@link PENALTY_CODES} closes. */
const SETTLED_MS = 60_000;
/** Defaults of {@link GeoClientOptions.heartbeatMs} and {@link GeoClientOptions.connectTimeoutMs}. */
const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** The longest wait for `geo.welcome` (otherwise twice `heartbeatMs`). */
const MAX_WELCOME_WAIT_MS = 10_000;
/** How long `close()` waits for the server's answer to its close frame before dropping the socket (`ws` would wait 30 s). */
const CLOSE_ANSWER_WAIT_MS = 1000;
/** The longest wait for the answer of the handshake check (`GET /geo/handshake`). */
const HANDSHAKE_CHECK_TIMEOUT_MS = 5000;
/** The most of a refusal's body the client reads. */
const MAX_REFUSAL_BODY = 4096;
/**
 * A fresh `event_id` (UUID v4), for apps that need it before publishing (to track a
 * pending message). `crypto.randomUUID` exists only on secure origins (https, localhost).
 */
export function newEventId(): string {
  const { crypto } = globalThis;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A connection to the nearest region of a geo-ws deployment that survives anything the
 * network or a region does: it reconnects with jittered backoff, fails over to the next
 * nearest region, resumes every room from its last `seq` (no gap, no duplicate), and
 * resends unacknowledged publishes with their original `event_id` (applied once).
 *
 * @example
 * const client = await GeoClient.connect({ directoryUrl: 'https://eu.chat.example', token });
 * await client.join('lobby', (event) => render(event));
 * await client.publish('lobby', 'chat.message', { text: 'hi' });
 *
 * @example
 * // To be able to give up while connecting: close() rejects the pending connect() (CLOSED).
 * const client = new GeoClient({ directoryUrl: 'https://eu.chat.example', token });
 * const connecting = client.connect();
 * setTimeout(() => client.close(), 5000);
 * await connecting;
 */
export class GeoClient {
  private readonly events = new ClientEvents();
  private readonly rooms: RoomTracker;
  private readonly outbox: Outbox;
  private regions: RankedRegion[] = [];
  private regionIndex = 0;
  private socket: WebSocketLike | undefined;
  private attempts = 0;
  private failuresHere = 0;
  private closedByUser = false;
  private lastFrameAt = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private drift: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Abandons the current connection if it sends no `geo.welcome` in time. */
  private welcomeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline of `connect()` (`connectTimeoutMs`). */
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly counter = new ConsistencyCounter();
  private readonly reports: ConsistencyReports;
  /** Aborted by `close()`: the directory fetch, probes and handshake checks still running stop. */
  private readonly lifetime = new AbortController();
  /** The `connect()` under way or done. */
  private connecting: Promise<this> | undefined;
  /** The `regions` option, checked; `undefined` when the directory is read from `directoryUrl`. */
  private readonly directory: GeoRegion[] | undefined;
  private readonly directoryUrl: string | undefined;
  private readonly Socket: WebSocketConstructor;
  private readonly codec: GeoCodec;
  /** A 401 made the client ask the `token` function for a fresh token (once, until the next `geo.welcome`). */
  private freshTokenTried = false;
  /** The code the client closed the current connection with, whatever the server echoes. */
  private closingWith: number | undefined;
  /** Closes in a row for this client's conduct ({@link PENALTY_CODES}). */
  private penalties = 0;
  /** When the current connection got its `geo.welcome`. */
  private openedAt: number | undefined;
  private redirect: string | undefined;
  private firstOpen: { resolve(): void; reject(error: Error): void } | undefined;
  private connectedRegion: string | undefined;
  private pingSentAt = 0;
  private readonly tokens: TokenRefresher;
  /** The state of the connection. */
  state: ConnectionState = 'connecting';
  /** Round trip of the last `geo.ping` on the live connection, in ms. */
  rttMs: number | undefined;
  /** The session id the server gave (keep it to resume after a reload). */
  sessionId: string | undefined;
  /** The authenticated identity the server stamps as `sender`. */
  sender: string | undefined;

  /**
   * A client that is not connected yet: call {@link GeoClient.connect | connect()}. The
   * options are checked here: what cannot work (no or a malformed `regions` entry or
   * `directoryUrl`, no WebSocket class) throws a `GeoClientError` with code
   * `INVALID_OPTIONS`.
   */
  constructor(private readonly options: GeoClientOptions) {
    ({ directory: this.directory, directoryUrl: this.directoryUrl, Socket: this.Socket, codec: this.codec } = checkOptions(options));
    this.tokens = new TokenRefresher(options, { send: (event, data) => this.send(event, data) }, this.events.emit, this.lifetime.signal);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    const connection: ClientConnection = {
      get isOpen() {
        return client.isOpen;
      },
      get region() {
        return client.connectedRegion;
      },
      send: (event, data) => this.send(event, data),
      sendEncoded: (wire) => this.socket!.send(wire),
    };
    this.reports = new ConsistencyReports(this.counter, connection);
    this.rooms = new RoomTracker(
      options,
      connection,
      this.events,
      this.counter,
      { send: (room) => this.outbox.pump(room), drop: (room, error) => this.outbox.drop(room, error) },
      () => ({ sessionId: this.sessionId, sender: this.sender }),
    );
    this.sessionId = options.sessionId ?? this.rooms.savedSessionId;
    this.outbox = new Outbox(options, this.codec, connection, this.rooms);
  }

  /**
   * Finds the nearest region, connects, and resolves once the first connection is open.
   * Rejects with a `GeoClientError`: `INVALID_OPTIONS` at once, `UNAUTHORIZED` or
   * `FORBIDDEN` as soon as a region refuses the token, `TIMEOUT` after `connectTimeoutMs`;
   * the client is then closed. To be able to give up earlier, use
   * `new GeoClient(options).connect()` and `close()`.
   */
  static async connect(options: GeoClientOptions): Promise<GeoClient> {
    return new GeoClient(options).connect();
  }

  /**
   * Connects (see the static {@link GeoClient.connect}); resolves with this client once the
   * first connection is open. Calling it again returns the same promise. `close()` before
   * then rejects it with `CLOSED`, and nothing of the client is left running.
   */
  connect(): Promise<this> {
    this.connecting ??= this.start().then(() => this);
    return this.connecting;
  }

  /** The region connected to now. */
  get region(): string | undefined {
    return this.connectedRegion;
  }

  /**
   * Room-log events delivered, and the duplicates, regressions and gaps seen, since the
   * client was created (a copy; see the `anomaly` event and docs/CLIENT.md, "Consistency").
   */
  get consistency(): ConsistencyCounts {
    return this.counter.snapshot;
  }

  /** Regions in failover order, with their measured RTT. */
  get rankedRegions(): readonly RankedRegion[] {
    return this.regions;
  }

  /** Calls `listener` on every `event` (see {@link GeoClientEvents}); returns a function that removes it. */
  on<K extends keyof GeoClientEvents>(event: K, listener: (value: GeoClientEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Joins a room and calls `handler` with its events in `seq` order, each once, across
   * reconnects and region moves. Resolves with the server's `geo.joined` answer.
   * `since`/`epoch` resume from a position stored elsewhere (`since: 0`: all retained history);
   * a `since` without its `epoch` is replayed from but answered `recovered: false` (a `gap`).
   */
  join(room: string, handler: RoomHandler, position: { since?: number; epoch?: string } = {}): Promise<JoinedFrame> {
    if (this.closedByUser) return Promise.reject(new GeoClientError('CLOSED', 'the client was closed'));
    return this.rooms.join(room, handler, position);
  }

  /** Leaves a room; a join still waiting for its answer and the room's unacknowledged publishes are rejected (`LEFT`). */
  leave(room: string): void {
    this.rooms.leave(room);
  }

  /**
   * Publishes an event to a joined room. Resolves with the ack once the room log stored
   * it; until then it stays in the room's outbox and is resent, with the same `event_id`
   * and in `publish()` order, after retryable errors and reconnects, so it is stored
   * exactly once and after this client's earlier publishes to the room. Rejects at once,
   * without sending, what the server could never accept (a payload with no JSON form, too
   * deep, too large); rejects when the server refuses it for good, after
   * `maxInternalRetries` `INTERNAL` answers, or on `leave()`/`close()`.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- public API: `publish<Message>(…)` checks the payload against the app's type; dropping T would break callers that pass it
  publish<T = unknown>(room: string, event: string, data: T, eventId: string = newEventId()): Promise<AckFrame> {
    if (this.closedByUser) return Promise.reject(new GeoClientError('CLOSED', 'the client was closed'));
    if (!this.rooms.has(room)) return Promise.reject(new GeoClientError('NOT_JOINED', `join room "${room}" before publishing to it`));
    return this.outbox.publish(room, event, data, eventId);
  }

  /** Publishes waiting for their ack (sent or queued behind an earlier one). */
  get unacknowledged(): number {
    return this.outbox.size;
  }

  /** Moves to another region now (resuming every room there): the connection closes with {@link GeoClientCloseCode.MOVING}. */
  moveTo(regionName: string): void {
    const index = this.regions.findIndex((region) => region.name === regionName);
    if (index === -1) throw new Error(`unknown region "${regionName}"`);
    if (this.closedByUser) return;
    this.regionIndex = index;
    this.failuresHere = 0;
    this.attempts = 0;
    if (this.socket) return this.closeConnection(GeoClientCloseCode.MOVING, 'moving region');
    // Between connections: go now rather than after the backoff delay.
    if (this.reconnectTimer !== undefined) this.scheduleOpen(0);
  }

  /**
   * Closes for good (close code 1000): a `connect()` still under way and every join and
   * publish still waiting are rejected (`CLOSED`), and nothing of the client is left
   * running (timers, probes, a directory fetch or handshake check under way), so a Node
   * process can exit.
   */
  close(): void {
    this.shutdown(new GeoClientError('CLOSED', 'the client was closed'));
  }

  /** Stops for good: `connect()` (if under way) and everything waiting reject with `reason`. */
  private shutdown(reason: GeoClientError): void {
    if (this.closedByUser) return;
    this.reports.close(); // what happened since the last one
    this.closedByUser = true;
    this.stopTimers();
    this.lifetime.abort(reason);
    this.rooms.flushPositions();
    const socket = this.socket;
    this.socket = undefined;
    this.sender = undefined;
    if (socket) {
      // Nothing the server still sends matters now: its frames must not reopen anything.
      detach(socket);
      try {
        socket.close(GeoClientCloseCode.CLOSED, 'client closed');
      } catch {
        // already closing
      }
      // ws waits 30 s for the server's answer to the close frame, and its timer holds the
      // process: a server that does not answer soon is not waited for. Unref'd, this timer
      // itself holds nothing.
      const terminate = (socket as { terminate?: () => void }).terminate;
      if (terminate) {
        const drop = setTimeout(() => terminate.call(socket), CLOSE_ANSWER_WAIT_MS) as { unref?: () => void };
        drop.unref?.();
      }
    }
    this.setState('closed');
    this.rooms.close(reason);
    this.outbox.close(reason);
    const first = this.firstOpen;
    this.firstOpen = undefined;
    first?.reject(reason);
  }

  /**
   * Gives up for good (a region refused the token): during `connect()` it rejects with
   * `error`; later the client reports `error` and closes (state `closed`).
   */
  private giveUp(error: GeoClientError): void {
    const connected = this.firstOpen === undefined;
    this.shutdown(error);
    if (connected) this.emit('error', { code: error.code, message: error.message });
  }

  // ---- connection --------------------------------------------------------------------

  /**
   * Reads the directory, ranks the regions and opens the first connection, all within
   * `connectTimeoutMs`. Settles when the first connection is open (`geo.welcome`), or
   * when the client gives up: the deadline, a refused token, `close()`.
   */
  private async start(): Promise<void> {
    if (this.closedByUser) throw new GeoClientError('CLOSED', 'the client was closed');
    const opened = new Promise<void>((resolve, reject) => (this.firstOpen = { resolve, reject }));
    // Settled by whatever gives up, maybe while this function still awaits something else.
    opened.catch(() => undefined);
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.shutdown(new GeoClientError('TIMEOUT', `GeoClient: no region accepted a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      const directory = this.directory ?? (await this.fetchDirectory());
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the await above
      if (this.closedByUser) return await opened;
      if (this.options.pinRegion !== undefined && !directory.some((region) => region.name === this.options.pinRegion))
        throw invalidOptions(
          `pinRegion "${this.options.pinRegion}" is not in the directory (${directory.map((region) => region.name).join(', ')})`,
        );
      const ranked = await rankRegions(directory, this.options.probe ?? httpProbe(), {
        samples: this.options.probeSamples,
        order: this.options.regionOrder,
        pin: this.options.pinRegion,
        signal: this.lifetime.signal,
      });
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the await above
      if (this.closedByUser) return await opened;
      this.regions = ranked;
    } catch (error) {
      this.shutdown(
        error instanceof GeoClientError ? error : new GeoClientError('UNAVAILABLE', (error as Error).message, { cause: error }),
      );
      return await opened;
    }
    const heartbeatMs = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.heartbeat = setInterval(() => this.checkHeartbeat(heartbeatMs), heartbeatMs);
    if (this.options.driftBackMs) this.drift = setInterval(() => void this.driftBack(), this.options.driftBackMs);
    // A reload or a closed tab: write the positions now (the coalescing timer would not fire).
    this.rooms.starting();
    this.openNext();
    await opened;
  }

  private async fetchDirectory(): Promise<GeoRegion[]> {
    const url = `${this.directoryUrl!}/geo/regions`;
    let body: unknown;
    try {
      const response = await fetch(url, { cache: 'no-store', signal: this.lifetime.signal });
      if (!response.ok) throw new Error(`answered HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      if (this.closedByUser) return [];
      throw new GeoClientError('UNAVAILABLE', `GeoClient: could not read the region directory ${url}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return checkRegions((body as { regions?: unknown } | null)?.regions, url);
  }

  private get isOpen(): boolean {
    return this.socket?.readyState === OPEN && this.sender !== undefined;
  }

  /**
   * Opens the next connection. If that fails before there is a socket (the `token`
   * function threw, no WebSocket class): during `connect()` the client closes and
   * `connect()` rejects; later it reports `error` and counts a failed attempt.
   */
  private openNext(): void {
    this.reconnectTimer = undefined;
    this.open().catch((error: unknown) => {
      if (this.closedByUser) return;
      if (this.firstOpen) {
        this.shutdown(
          error instanceof GeoClientError
            ? error
            : new GeoClientError('INTERNAL', `GeoClient: could not open a connection: ${(error as Error).message}`, { cause: error }),
        );
        return;
      }
      this.emit('error', {
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
    if (this.closedByUser) return;
    const region = this.regions[this.regionIndex];
    const url = new URL(this.redirect ?? region.wsUrl);
    this.redirect = undefined;
    for (const [key, value] of Object.entries(this.options.query ?? {})) url.searchParams.set(key, value);
    if (this.sessionId) url.searchParams.set('session', this.sessionId);
    let token: string | undefined;
    try {
      token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    } catch (error) {
      throw new GeoClientError('UNAUTHORIZED', `the token function failed: ${(error as Error).message}`);
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the await above; the compiler keeps the narrowing from the check at the top
    if (this.closedByUser) return;
    this.setState(this.state === 'connecting' ? 'connecting' : 'reconnecting');
    // JSON needs no subprotocol (the server's default); another codec is always asked for.
    const protocols = token
      ? [this.codec.subprotocol, `${BEARER_PREFIX}${token}`]
      : this.codec === jsonCodec
        ? undefined
        : [this.codec.subprotocol];
    const socket = new this.Socket(url.toString(), protocols);
    this.socket = socket;
    // undici and browsers hand binary frames over as a Blob, which cannot be read at once.
    if ('binaryType' in socket) socket.binaryType = 'arraybuffer';
    let opened = false;
    socket.onopen = () => (opened = true);
    // ws tells the HTTP status and body of a refused upgrade; browsers and undici do not.
    const emitter = socket as Partial<NodeEmitter>;
    const tellsStatus = typeof emitter.on === 'function';
    if (tellsStatus)
      emitter.on!('unexpected-response', (_request: unknown, response: HttpResponse) => this.readRefusal(socket, response, region));
    this.sender = undefined;
    this.closingWith = undefined;
    this.lastFrameAt = Date.now();
    // A region that accepts TCP but never answers (a dead host behind a load balancer)
    // must count as a failed attempt, not hang the client.
    const heartbeatMs = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    clearTimeout(this.welcomeTimer);
    this.welcomeTimer = setTimeout(
      () => {
        if (this.socket === socket && this.sender === undefined) this.abandon(GeoClientCloseCode.NO_WELCOME);
      },
      Math.min(MAX_WELCOME_WAIT_MS, 2 * heartbeatMs),
    );
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      let frame: Frame;
      try {
        frame = this.codec.decode(message.data) as Frame;
      } catch {
        return; // not a protocol frame: the server sends none such
      }
      this.onFrame(frame, region);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      // It failed before opening, and the class cannot say why: ask the region (once).
      if (!opened && !tellsStatus && this.closingWith === undefined) return void this.checkHandshake(region, url, token);
      this.onClose(this.closingWith ?? event.code);
    };
    socket.onerror = () => {
      // ws: onclose follows and decides. Node's undici WebSocket (Node 20) reports a refused
      // upgrade with an error and no close: the attempt has failed.
      if (this.socket !== socket || opened || tellsStatus || this.closingWith !== undefined) return;
      this.socket = undefined;
      detach(socket);
      try {
        socket.close();
      } catch {
        // already closing
      }
      void this.checkHandshake(region, url, token);
    };
  }

  /**
   * A refused upgrade, as `ws` reports it (`'unexpected-response'`): reads the status and
   * the JSON body `{ code, message }`, then ends the handshake (ws leaves that to this
   * listener). 401 and 403 are refusals of the token ({@link onRefused}); 429 (too many
   * connections of this user) a close with 4008 (the same region after a penalty delay);
   * anything else (503 while the region drains, a proxy's 502) is a failed attempt like a
   * lost connection.
   */
  private readRefusal(socket: WebSocketLike, response: HttpResponse, region: RankedRegion): void {
    let body = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      response.destroy?.();
      // No close listener of the client runs for this socket: the outcome is decided here.
      detach(socket);
      const terminate = (socket as { terminate?: () => void }).terminate;
      try {
        if (terminate) terminate.call(socket);
        else socket.close();
      } catch {
        // already closing
      }
      if (this.socket !== socket) return; // abandoned (no welcome in time) or closed meanwhile
      this.socket = undefined;
      const refusal = authRefusal(response.statusCode ?? 0, body);
      if (refusal) this.onRefused(region, refusal);
      else this.onClose(failedUpgradeCode(response.statusCode ?? 0));
    };
    response.on('error', () => undefined);
    response.setEncoding?.('utf8');
    response.on('data', (chunk: unknown) => {
      body += String(chunk);
      if (body.length > MAX_REFUSAL_BODY) finish();
    });
    response.on('end', finish);
    response.on('close', finish);
  }

  /**
   * A connection attempt failed before it opened, with a WebSocket class that tells no
   * HTTP status (browsers, undici). One `GET <url>/geo/handshake` with the same token and
   * query asks the region what the upgrade got: 401 or 403 is a refusal of the token
   * ({@link onRefused}); 429 a close with 4008, as from `ws`; anything else (204: the
   * upgrade would pass now, 503, no answer, a 404 from a region without the endpoint) is a
   * failed attempt, as before.
   */
  private async checkHandshake(region: RankedRegion, wsUrl: URL, token: string | undefined): Promise<void> {
    clearTimeout(this.welcomeTimer);
    let refusal: Refusal | undefined;
    let status = 0;
    try {
      refusal = await withDeadline(HANDSHAKE_CHECK_TIMEOUT_MS, this.lifetime.signal, async (signal) => {
        const response = await fetch(`${region.url}/geo/handshake${wsUrl.search}`, {
          cache: 'no-store',
          headers: token ? { authorization: `Bearer ${token}` } : {},
          signal,
        });
        status = response.status;
        const body = await response.text();
        return authRefusal(response.status, body);
      });
    } catch {
      // no answer: as before, a failed attempt
    }
    if (this.closedByUser || this.socket !== undefined) return;
    if (refusal) this.onRefused(region, refusal);
    else this.onClose(failedUpgradeCode(status));
  }

  /**
   * A region refused the token (HTTP 401 or 403). With a `token` function, a 401 gets one
   * more attempt at once with a fresh token; otherwise the client gives up: no other
   * region or later attempt would accept this token either.
   */
  private onRefused(region: RankedRegion, refusal: Refusal): void {
    clearTimeout(this.welcomeTimer);
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

  /** Closes the current connection on the client's initiative: it is handled as `code`, whatever the server answers. */
  private closeConnection(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.closingWith = code;
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  /**
   * Gives up on a connection that stopped answering. A close handshake would wait for a
   * peer that is gone, so the socket is dropped at once and the reconnect starts now.
   */
  private abandon(code: number): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    detach(socket);
    const terminate = (socket as { terminate?: () => void }).terminate;
    try {
      if (terminate) terminate.call(socket);
      else socket.close(code);
    } catch {
      // already closing
    }
    this.onClose(code);
  }

  /**
   * A connection ended with `code` (the server's, the client's own, or 1006). Every room
   * and every publish sent on it starts again on the next connection. How soon, and where
   * (docs/CLIENT.md, "Close codes"):
   * - the client moves ({@link GeoClientCloseCode.MOVING}) or the region restarts
   *   ({@link GeoCloseCode.SERVICE_RESTART}, then to the next region): at once;
   * - the server closed it for this client's conduct ({@link PENALTY_CODES}: too many
   *   refused frames, a frame too big, a slow consumer, too many connections of this user,
   *   also as an upgrade refused with HTTP 429): to the same region after a
   *   {@link penaltyDelay} that grows with each such close in a row (a `geo.welcome` does not
   *   end the run; a connection that stays open {@link SETTLED_MS} does), so a client that
   *   keeps causing them never loops hot;
   * - anything else (lost, token expired, idle, no welcome, silent): after a full-jitter
   *   backoff delay that grows with the failed attempts in a row; after `failoverAfter` of
   *   them, to the next region.
   */
  private onClose(code: number): void {
    clearTimeout(this.welcomeTimer);
    const openFor = this.openedAt === undefined ? 0 : Date.now() - this.openedAt;
    this.openedAt = undefined;
    this.sender = undefined;
    this.reports.stop();
    this.rooms.connectionLost();
    this.outbox.connectionLost();
    if (this.closedByUser) return;
    if (openFor >= SETTLED_MS) this.penalties = 0;
    let delayMs: number;
    if (code === GeoClientCloseCode.MOVING) {
      delayMs = 0;
    } else if (code === GeoCloseCode.SERVICE_RESTART) {
      if (this.regions.length > 1) this.nextRegion();
      delayMs = 0;
    } else if (PENALTY_CODES.has(code)) {
      delayMs = penaltyDelay(++this.penalties, this.options.backoff);
      this.attempts++;
    } else {
      if (++this.failuresHere >= (this.options.failoverAfter ?? 3) && this.regions.length > 1) this.nextRegion();
      delayMs = backoffDelay(this.attempts++, this.options.backoff);
    }
    this.setState('reconnecting');
    this.emit('reconnect', { attempt: this.attempts, delayMs, region: this.regions[this.regionIndex].name, code });
    this.scheduleOpen(delayMs);
  }

  /**
   * Moves past the region that failed: to the next in the ranking now, and, unless the
   * order is fixed, re-ranks the others in the background for the move after this one.
   */
  private nextRegion(): void {
    const failed = this.regions[this.regionIndex].name;
    this.regionIndex = (this.regionIndex + 1) % this.regions.length;
    this.failuresHere = 0;
    this.attempts = 0;
    if (this.options.pinRegion || this.options.regionOrder) return;
    void rankRegions(this.regions, this.options.probe ?? httpProbe(), {
      samples: this.options.probeSamples,
      signal: this.lifetime.signal,
    }).then(
      (ranked) => {
        if (this.closedByUser) return;
        const current = this.regions[this.regionIndex].name;
        // The failed region goes last whatever it measured; the current one keeps its place.
        this.regions = [...ranked.filter((region) => region.name !== failed), ...ranked.filter((region) => region.name === failed)];
        this.regionIndex = Math.max(
          0,
          this.regions.findIndex((region) => region.name === current),
        );
      },
      () => undefined,
    );
  }

  private onFrame(frame: Frame, region: RankedRegion): void {
    switch (frame.event) {
      case GeoFrame.WELCOME: {
        const welcome = frame.data as WelcomeFrame;
        clearTimeout(this.welcomeTimer);
        this.openedAt = Date.now();
        this.sender = welcome.sender;
        this.sessionId = welcome.session_id ?? this.sessionId;
        this.connectedRegion = welcome.region;
        this.failuresHere = 0;
        this.attempts = 0;
        this.freshTokenTried = false;
        this.setState('open');
        this.emit('region', { region: welcome.region, rttMs: region.rttMs });
        this.rooms.restore(welcome);
        this.tokens.schedule(welcome.expires_at);
        this.reports.start(welcome.report_ms);
        this.rooms.rejoinAll();
        clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        this.firstOpen?.resolve();
        this.firstOpen = undefined;
        return;
      }
      case GeoFrame.JOINED:
        return this.rooms.joined(frame.data as JoinedFrame);
      case GeoFrame.ACK:
        return this.outbox.acked(frame.data as AckFrame);
      case GeoFrame.ERROR:
        return this.onError(frame.data as ErrorFrame);
      case GeoFrame.RECONNECT: {
        // The region drains: move to our next-nearest region now, before it closes us.
        // The server's suggestion is used only when we know no other region.
        const others = this.regions.filter((candidate) => candidate.name !== this.connectedRegion);
        if (others.length > 0) this.regionIndex = this.regions.indexOf(others[0]);
        else this.redirect = (frame.data as ReconnectFrame).url;
        this.failuresHere = 0;
        this.closeConnection(GeoClientCloseCode.MOVING, 'moving on drain');
        return;
      }
      case GeoFrame.AUTHED:
        this.tokens.schedule((frame.data as AuthedFrame).expires_at);
        return;
      case GeoFrame.PONG:
        this.rttMs = Date.now() - this.pingSentAt;
        return;
      case GeoFrame.LEFT:
        return this.rooms.left(frame.data as LeftFrame);
      default:
        if (frame.event.startsWith('geo.')) return;
        this.rooms.event(frame.data as GeoEnvelope);
    }
  }

  private onError(error: ErrorFrame): void {
    if (error.event_id !== undefined) return this.outbox.refused(error.event_id, error);
    if (!this.rooms.refused(error)) this.emit('error', error);
  }

  private send(event: string, data: unknown): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(this.codec.encode({ event, data }));
    return true;
  }

  // ---- liveness and drift ---------------------------------------------------------------

  private checkHeartbeat(heartbeatMs: number): void {
    if (this.socket?.readyState !== OPEN) return;
    if (this.lastFrameAt && Date.now() - this.lastFrameAt > 2 * heartbeatMs) {
      this.abandon(GeoClientCloseCode.SILENT);
      return;
    }
    this.pingSentAt = Date.now();
    this.send(GeoFrame.PING, { t: this.pingSentAt });
  }

  private async driftBack(): Promise<void> {
    if (!this.isOpen || this.options.pinRegion || this.options.regionOrder) return;
    const ranked = await rankRegions(this.regions, this.options.probe ?? httpProbe(), {
      samples: this.options.probeSamples,
      signal: this.lifetime.signal,
    });
    if (this.closedByUser) return;
    const nearest = ranked.find((region) => Number.isFinite(region.rttMs));
    this.regions = ranked;
    this.regionIndex = Math.max(
      0,
      ranked.findIndex((region) => region.name === this.connectedRegion),
    );
    if (nearest && nearest.name !== this.connectedRegion) this.moveTo(nearest.name);
  }

  private stopTimers(): void {
    this.tokens.stop();
    clearTimeout(this.welcomeTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.drift);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    this.welcomeTimer = this.heartbeat = this.drift = this.reconnectTimer = this.connectTimer = undefined;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  private emit<K extends keyof GeoClientEvents>(event: K, value: GeoClientEvents[K]): void {
    this.events.emit(event, value);
  }
}

/** `ws`'s side of a socket: an EventEmitter. */
interface NodeEmitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
}

/** The parts of Node's `http.IncomingMessage` the client reads (the SDK has no Node types). */
interface HttpResponse {
  statusCode?: number;
  on(event: string, listener: (...args: never[]) => void): unknown;
  setEncoding?(encoding: string): unknown;
  destroy?(): unknown;
}

/** A region's refusal of the token. */
interface Refusal {
  status: number;
  code: string;
  message: string;
}

/**
 * A refusal of the token in an HTTP answer (of the upgrade or of the handshake check):
 * 401 or 403, with the server's code and message from its JSON body `{ code, message }`
 * when it has one. Anything else: `undefined`.
 */
function authRefusal(status: number, body: string): Refusal | undefined {
  if (status !== 401 && status !== 403) return undefined;
  let parsed: { code?: unknown; message?: unknown } = {};
  try {
    parsed = (JSON.parse(body) as typeof parsed | null) ?? {};
  } catch {
    // not the server's JSON (a proxy's page): the status says enough
  }
  return {
    status,
    code: typeof parsed.code === 'string' && parsed.code ? parsed.code : status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN',
    message: typeof parsed.message === 'string' && parsed.message ? parsed.message : `HTTP ${status}`,
  };
}

/** The close code an upgrade that failed with this HTTP status (0: unknown) is handled as. */
function failedUpgradeCode(status: number): number {
  return status === TOO_MANY_CONNECTIONS_STATUS ? GeoCloseCode.TOO_MANY_CONNECTIONS : ABNORMAL_CLOSURE;
}

/**
 * Stops a socket from reaching the client. A no-op error listener stays: `ws` throws an
 * error event nobody listens to, as when a connection still opening is terminated.
 */
function detach(socket: WebSocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => undefined;
}
