import { backoffDelay, penaltyDelay } from './dialer/backoff.js';
import { jsonCodec, type GeoCodec } from './codec.js';
import { ClientEvents, type ConnectionState, type EventDelivery, type GeoClientEvents, type RoomHandler } from './geo-client-events.js';
import { checkOptions, invalidOptions, type GeoClientOptions } from './geo-client-options.js';
import { ConsistencyCounter, LogCheck, reportInterval, type ConsistencyCounts } from './rooms/consistency.js';
import { GeoClientError } from './errors.js';
import { httpProbe, rankRegions, withDeadline, type RankedRegion } from './dialer/nearest-region.js';
import { PositionStore, type SavedPositions } from './rooms/position-store.js';
import { checkRegions } from './dialer/regions.js';
import { TokenRefresher } from './token/token-refresher.js';
import { Outbox } from './outbox/outbox.js';
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

/** Shared, so a delivery allocates nothing. */
const LIVE: EventDelivery = Object.freeze({ replayed: false });
const REPLAYED: EventDelivery = Object.freeze({ replayed: true });

/** Where the client is in one log of a room. */
interface Position {
  seq: number;
  epoch?: string;
  /** The last `geo.joined` seq: events up to it come from history. */
  joinedAt?: number;
  /** Duplicates, regressions and gaps in this log (created at the first join). */
  check?: LogCheck;
}

interface RoomState {
  name: string;
  handlers: Set<RoomHandler>;
  global: Position;
  regional: Position & { region?: string };
  joined: boolean;
  waiters: { resolve(frame: JoinedFrame): void; reject(error: Error): void }[];
  /** Join attempts refused with a retryable code since the last `geo.joined`. */
  joinFailures: number;
  /** Set while the room waits to join again after a retryable refusal. */
  retryTimer?: ReturnType<typeof setTimeout>;
}

/** Join refusals after which the client joins again (after a backoff delay). */
const RETRYABLE_JOIN_CODES = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL']);

export { GeoClientError };
export type { ConnectionState, EventDelivery, GeoClientEvents, GeoClientOptions, RoomHandler };

/** The browser's window, for `pagehide`; Node has none. */
const page = globalThis as unknown as {
  addEventListener?(type: 'pagehide', listener: () => void): void;
  removeEventListener?(type: 'pagehide', listener: () => void): void;
};

/** The client's consistency report (docs/PROTOCOL.md); the server counts it in its metrics. */
const REPORT_FRAME = 'geo.report';
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
  private readonly rooms = new Map<string, RoomState>();
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
  /** Sends `geo.report` every `report_ms` of the connection's `geo.welcome`. */
  private reportTimer: ReturnType<typeof setInterval> | undefined;
  private readonly counter = new ConsistencyCounter();
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
  /** Positions the server kept for this session, for rooms joined without one. */
  private restored: Record<string, { seq: number; epoch: string }> = {};
  /** Positions from `storage` (this client's own, from an earlier page load), for rooms joined without one. */
  private savedRooms = new Map<string, { seq: number; epoch: string }>();
  private savedSender: string | undefined;
  /** `savedRooms` are known to be this sender's (checked at the first `geo.welcome`). */
  private savedChecked = false;
  private readonly positions: PositionStore | undefined;
  private readonly tokens: TokenRefresher;
  private readonly onPageHide = (): void => this.positions?.flush();
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
    if (options.storage) {
      this.positions = new PositionStore(options.storage, options.storageKey ?? 'geo-ws', () => this.positionsToSave());
      const saved = this.positions.load();
      this.savedRooms = new Map(Object.entries(saved.rooms));
      this.savedSender = saved.sender;
      this.sessionId = saved.sessionId;
    }
    this.sessionId = options.sessionId ?? this.sessionId;
    this.tokens = new TokenRefresher(options, { send: (event, data) => this.send(event, data) }, this.events.emit, this.lifetime.signal);
    const connection: ClientConnection = {
      get isOpen() {
        return client.isOpen;
      },
      region: undefined,
      send: (event, data) => this.send(event, data),
      sendEncoded: (wire) => this.socket!.send(wire),
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    this.outbox = new Outbox(options, this.codec, connection, {
      isJoined: (room) => this.rooms.get(room)?.joined === true,
      rejoin: (name) => {
        const room = this.rooms.get(name);
        if (room?.joined) {
          room.joined = false;
          if (this.isOpen) this.sendJoin(room);
        }
      },
    });
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
    let state = this.rooms.get(room);
    if (!state) {
      const start = position.since !== undefined ? { seq: position.since, epoch: position.epoch } : (this.resumePoint(room) ?? { seq: -1 });
      state = { name: room, handlers: new Set(), global: { ...start }, regional: { seq: -1 }, joined: false, waiters: [], joinFailures: 0 };
      this.rooms.set(room, state);
    }
    state.handlers.add(handler);
    const joinedState = state;
    return new Promise<JoinedFrame>((resolve, reject) => {
      joinedState.waiters.push({ resolve, reject });
      if (this.isOpen) this.sendJoin(joinedState);
    });
  }

  /** Leaves a room; a join still waiting for its answer and the room's unacknowledged publishes are rejected (`LEFT`). */
  leave(room: string): void {
    const state = this.rooms.get(room);
    if (!state) return;
    this.rooms.delete(room);
    clearTimeout(state.retryTimer);
    if (this.positions) {
      this.savedRooms.delete(room);
      this.positions.changed();
    }
    if (this.isOpen) this.send(GeoFrame.LEAVE, { room });
    const left = new GeoClientError('LEFT', `left room "${room}" before it was joined`);
    for (const waiter of state.waiters.splice(0)) waiter.reject(left);
    this.outbox.drop(room, new GeoClientError('LEFT', `left room "${room}" before the publish was acknowledged`));
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
    if (this.reportTimer !== undefined) this.report(); // what happened since the last one
    this.closedByUser = true;
    this.stopTimers();
    this.lifetime.abort(reason);
    this.positions?.flush();
    page.removeEventListener?.('pagehide', this.onPageHide);
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
    for (const room of this.rooms.values()) {
      room.joined = false;
      clearTimeout(room.retryTimer);
      for (const waiter of room.waiters.splice(0)) waiter.reject(reason);
    }
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
    if (this.positions) page.addEventListener?.('pagehide', this.onPageHide);
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
    clearInterval(this.reportTimer);
    this.reportTimer = undefined;
    for (const room of this.rooms.values()) {
      room.joined = false;
      room.global.check?.disconnected();
      room.regional.check?.disconnected();
    }
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
        this.restore(welcome);
        this.tokens.schedule(welcome.expires_at);
        this.startReports(welcome.report_ms);
        for (const room of this.rooms.values()) this.sendJoin(room);
        clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        this.firstOpen?.resolve();
        this.firstOpen = undefined;
        return;
      }
      case GeoFrame.JOINED:
        return this.onJoined(frame.data as JoinedFrame);
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
        return this.onLeft(frame.data as LeftFrame);
      default:
        if (frame.event.startsWith('geo.')) return;
        this.onEvent(frame.data as GeoEnvelope);
    }
  }

  /**
   * At `geo.welcome`: rooms this client has no position in resume from its own saved
   * positions (`storage`, if they are this sender's), else from the session the server
   * kept (`restored`).
   */
  private restore(welcome: WelcomeFrame): void {
    this.restored = welcome.restored ?? {};
    if (!this.savedChecked) {
      this.savedChecked = true;
      if (this.savedSender !== undefined && this.savedSender !== welcome.sender) this.savedRooms.clear();
    }
    for (const room of this.rooms.values()) {
      const start = room.global.seq < 0 ? this.resumePoint(room.name) : undefined;
      if (start) room.global = { seq: start.seq, epoch: start.epoch };
    }
    this.positions?.changed();
  }

  /** Where a room joined without a position resumes: the own saved position, else the server's. */
  private resumePoint(room: string): { seq: number; epoch: string } | undefined {
    return (this.savedChecked ? this.savedRooms.get(room) : undefined) ?? this.restored[room];
  }

  /** What `storage` keeps: every room's global position (and saved rooms not joined in this page). */
  private positionsToSave(): SavedPositions {
    const rooms = Object.fromEntries(this.savedRooms);
    for (const room of this.rooms.values()) {
      const { seq, epoch } = room.global;
      if (seq >= 0 && epoch !== undefined) rooms[room.name] = { seq, epoch };
    }
    return { sessionId: this.sessionId, sender: this.sender ?? this.savedSender, rooms };
  }

  private sendJoin(room: RoomState): void {
    clearTimeout(room.retryTimer);
    room.retryTimer = undefined;
    const { global, regional } = room;
    const sameRegion = regional.region === this.connectedRegion;
    (global.check ??= new LogCheck()).joining(global.seq >= 0 ? global.seq : undefined);
    (regional.check ??= new LogCheck()).joining(sameRegion && regional.seq >= 0 ? regional.seq : undefined);
    this.send(GeoFrame.JOIN, {
      room: room.name,
      ...(global.seq >= 0 ? { since: global.seq, ...(global.epoch ? { epoch: global.epoch } : {}) } : {}),
      // A regional log belongs to one region: resume it only where it was.
      ...(sameRegion && regional.seq >= 0 ? { regional: { since: regional.seq, epoch: regional.epoch } } : {}),
    });
  }

  private onJoined(joined: JoinedFrame): void {
    const room = this.rooms.get(joined.room);
    if (!room) return;
    const position = joined.scope === 'regional' ? room.regional : room.global;
    // Another epoch renumbers the log: what follows starts over.
    if (position.epoch !== undefined && position.epoch !== joined.epoch) position.seq = -1;
    if (position.seq < 0) position.seq = joined.recovered ? joined.seq : 0;
    position.epoch = joined.epoch;
    position.joinedAt = joined.seq;
    (position.check ??= new LogCheck()).joined(joined);
    this.positions?.changed();
    if (joined.scope === 'regional') {
      room.regional.region = this.connectedRegion;
      return;
    }
    if (!joined.recovered) this.emit('gap', { room: room.name, epoch: joined.epoch });
    room.joined = true;
    room.joinFailures = 0;
    for (const waiter of room.waiters.splice(0)) waiter.resolve(joined);
    // Now the room exists here again: send what it has not acknowledged, from the oldest
    // (a lost connection or a NOT_JOINED answer marked everything unsent).
    this.outbox.pump(room.name);
  }

  /**
   * `geo.left`. Without a code it answers the app's `leave()`, whose room is gone already.
   * With one, the server ended the membership: the room goes as after `leave()` (its
   * position is forgotten, it is not joined again), its waiting join and publishes are
   * rejected with that code, and the app is told (`left`).
   */
  private onLeft(left: LeftFrame): void {
    if (typeof left.code !== 'string') return;
    const room = this.rooms.get(left.room);
    if (!room) return;
    this.rooms.delete(room.name);
    clearTimeout(room.retryTimer);
    if (this.positions) {
      this.savedRooms.delete(room.name);
      this.positions.changed();
    }
    const message = typeof left.message === 'string' ? left.message : `the server ended the membership of room "${room.name}"`;
    const ended = new GeoClientError(left.code, message);
    for (const waiter of room.waiters.splice(0)) waiter.reject(ended);
    this.outbox.drop(room.name, ended);
    this.emit('left', { room: room.name, code: left.code, message });
  }

  private onEvent(envelope: GeoEnvelope): void {
    const room = this.rooms.get(envelope.room_id);
    if (!room) return;
    let delivery = LIVE;
    if (envelope.seq !== null) {
      const position = envelope.scope === 'regional' ? room.regional : room.global;
      const delivered = position.seq;
      const verdict = position.check?.check(envelope.seq, envelope.event_id, delivered);
      if (verdict?.anomaly) {
        this.counter.anomaly(verdict.anomaly);
        const { scope } = envelope;
        this.emit('anomaly', {
          kind: verdict.anomaly,
          room: room.name,
          ...(scope ? { scope } : {}),
          seq: envelope.seq,
          expected: delivered + 1,
          eventId: envelope.event_id,
        });
      }
      // Not delivered: already delivered (before a reconnect, or before a reload with
      // `storage`), or a duplicate or regression.
      if (envelope.seq <= delivered || (verdict && !verdict.deliver)) {
        // A duplicate stored again at a higher seq still moves the position past it.
        if (envelope.seq > delivered) {
          position.seq = envelope.seq;
          this.positions?.changed();
        }
        return;
      }
      position.seq = envelope.seq;
      if (envelope.seq <= (position.joinedAt ?? -1)) delivery = REPLAYED;
      this.positions?.changed();
      this.counter.delivered();
    }
    for (const handler of room.handlers) this.events.runCallback(() => handler(envelope, delivery), `a handler of room "${room.name}"`);
  }

  private onError(error: ErrorFrame): void {
    if (error.event_id !== undefined) {
      this.outbox.refused(error.event_id, error);
      return;
    }
    const room = error.room ? this.rooms.get(error.room) : undefined;
    if (room && !room.joined && !this.mayRetryJoin(room, error.code)) {
      // A join (first or after a reconnect) refused for good: the room is gone, and so is
      // every publish waiting for it.
      const refused = new GeoClientError(error.code, error.message);
      const waiters = room.waiters.splice(0);
      for (const waiter of waiters) waiter.reject(refused);
      this.rooms.delete(room.name);
      this.outbox.drop(room.name, refused);
      if (waiters.length === 0) this.emit('error', error);
      return;
    }
    if (room && RETRYABLE_JOIN_CODES.has(error.code)) {
      // The join could not be served yet, or the room's log was reset under us (the
      // server dropped the room): join again.
      room.joined = false;
      clearTimeout(room.retryTimer);
      room.retryTimer = setTimeout(
        () => {
          room.retryTimer = undefined;
          if (this.isOpen && this.rooms.get(room.name) === room && !room.joined) this.sendJoin(room);
        },
        backoffDelay(room.joinFailures, this.options.backoff),
      );
      return;
    }
    this.emit('error', error);
  }

  /** A join refused with a code worth another try: `INTERNAL` only `maxInternalRetries` times. */
  private mayRetryJoin(room: RoomState, code: string): boolean {
    if (!RETRYABLE_JOIN_CODES.has(code)) return false;
    room.joinFailures++;
    return code !== 'INTERNAL' || room.joinFailures <= (this.options.maxInternalRetries ?? 3);
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

  /**
   * Sends what the client counted every `report_ms` (from `geo.welcome`; none without it),
   * for the server's metrics. The timer does not keep a Node process alive.
   */
  private startReports(reportMs: unknown): void {
    clearInterval(this.reportTimer);
    this.reportTimer = undefined;
    const interval = reportInterval(reportMs);
    if (interval === undefined) return;
    this.reportTimer = setInterval(() => this.report(), interval);
    (this.reportTimer as { unref?: () => void }).unref?.();
  }

  /** One `geo.report` with the counts since the last one; nothing when nothing happened or the connection is not open. */
  private report(): void {
    const delta = this.counter.peekReport();
    if (!delta || this.socket?.readyState !== OPEN) return;
    this.send(REPORT_FRAME, delta);
    this.counter.markReported();
  }

  private stopTimers(): void {
    this.tokens.stop();
    clearTimeout(this.welcomeTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.drift);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    clearInterval(this.reportTimer);
    this.welcomeTimer = this.heartbeat = this.drift = this.reconnectTimer = this.connectTimer = undefined;
    this.reportTimer = undefined;
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
