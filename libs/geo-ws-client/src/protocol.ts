// The parts of wire protocol v1 the client relies on. The SDK has no dependencies, so it
// states them itself; they mirror docs/PROTOCOL.md and the server's
// libs/geo-ws/src/protocol/wire.ts (protocol.spec.ts keeps them in step).

/** The envelope of a room event, as every region delivers it (see docs/PROTOCOL.md). */
export interface GeoEnvelope<TData = unknown> {
  /** The publisher's idempotency key. */
  event_id: string;
  /** The room. */
  room_id: string;
  /** The event name (the server's `@GeoSubscribe`). */
  type: string;
  /** The authenticated identity of the publisher. */
  sender: string;
  /** When the accepting server stamped it: UTC, ISO-8601 with milliseconds. */
  timestamp: string;
  /** The region that accepted it. */
  region: string;
  /** Position in the room log (strictly increasing, not necessarily consecutive); `null` for ephemeral events. */
  seq: number | null;
  /** The payload, as the server's handler returned it. */
  data: TData;
  /** `'regional'` on events of the room's regional log only. */
  scope?: 'regional';
}

/** A region as `GET /geo/regions` lists it. */
export interface GeoRegion {
  /** The region's name (`eu`, `us`, …). */
  name: string;
  /** Its HTTP base URL (health probes, directory). */
  url: string;
  /** Its WebSocket URL. */
  wsUrl: string;
}

/**
 * A region as the client's `regions` option takes it: a unique `name`, the absolute
 * http(s) `url` of the region's app, and its WebSocket URL `wsUrl` (ws: or wss:), which
 * defaults to `url` with `ws:`/`wss:` and `/ws` appended, as the server derives it.
 */
export interface GeoRegionOption {
  /** The region's name (`eu`, `us`, …): unique in the list. */
  name: string;
  /** Its HTTP base URL, e.g. `https://eu.chat.example` (probes, the handshake check). */
  url: string;
  /** Its WebSocket URL, e.g. `wss://eu.chat.example/ws`. Default: `url` with `ws:`/`wss:` and `/ws`. */
  wsUrl?: string;
}

/** The subprotocol of wire protocol v1; the token travels as a second one, {@link BEARER_PREFIX}`<token>`. */
export const GEO_SUBPROTOCOL = 'geo-ws.v1';
/** The same protocol in MessagePack binary frames (`@geo-ws/client/msgpack`). */
export const GEO_MSGPACK_SUBPROTOCOL = 'geo-ws.v1.msgpack';
/** Prefix of the subprotocol that carries the token. */
export const BEARER_PREFIX = 'bearer.';

/** The protocol's own frame names (docs/PROTOCOL.md, "Frames at a glance"). */
export const GeoFrame = {
  JOIN: 'geo.join',
  LEAVE: 'geo.leave',
  PING: 'geo.ping',
  AUTH: 'geo.auth',
  WELCOME: 'geo.welcome',
  PONG: 'geo.pong',
  AUTHED: 'geo.authed',
  JOINED: 'geo.joined',
  LEFT: 'geo.left',
  ACK: 'geo.ack',
  ERROR: 'geo.error',
  RECONNECT: 'geo.reconnect',
} as const;

/** Protocol additions a server lists in `geo.welcome` `features` (docs/PROTOCOL.md). */
export const GeoFeature = {
  /** `geo.join { rooms: [...] }`: many rooms in one frame. */
  JOIN_ROOMS: 'join.rooms',
} as const;

/**
 * A frame on the wire, both ways: `{ event, data }`. `data` is what the peer sent: the
 * client reads it as the frame type its `event` names (below).
 */
export interface Frame {
  event: string;
  data: unknown;
}

/** The server's greeting once a connection is open (`geo.welcome`). */
export interface WelcomeFrame {
  /** The connection's id on the server. */
  connection_id: string;
  /** The region that accepted the connection. */
  region: string;
  /** The authenticated identity the server stamps as `sender`. */
  sender: string;
  /** When the connection's token expires (UTC, ISO-8601); absent for a token without expiry. */
  expires_at?: string;
  /** The session to resume with `?session=`; absent when the server runs without sessions. */
  session_id?: string;
  /** Positions the server kept for the resumed session, by room. */
  restored?: Record<string, { seq: number; epoch: string }>;
  /** Send `geo.report` this often (ms); absent when the server's metrics are off. */
  report_ms?: number;
  /** The server closes a connection that sends nothing this long (4002): the client pings within half of it. */
  idle_timeout_ms?: number;
  /** Protocol additions the server understands ({@link GeoFeature}); absent from servers older than the list. */
  features?: string[];
}

/** The server's answer to `geo.auth` (`geo.authed`). */
export interface AuthedFrame {
  /** When the new token expires; `null` for a token without expiry. */
  expires_at: string | null;
}

/** A draining region's suggestion of where to go (`geo.reconnect`). */
export interface ReconnectFrame {
  /** The suggested region. */
  region: string;
  /** Its WebSocket URL. */
  url: string;
}

/** The server's answer to a join (`geo.joined`). */
export interface JoinedFrame {
  /** The room. */
  room: string;
  /** The room log's position when joined: live events start after it. */
  seq: number;
  /** The incarnation of the room log; another epoch numbers its events afresh. */
  epoch: string;
  /** `false`: some events after the position asked for cannot be delivered (see the `gap` event). */
  recovered: boolean;
  /** `'regional'` for the answer about the room's regional log. */
  scope?: 'regional';
  /** `true` when the log numbers seqs 1, 2, 3… with none skipped (memory, Redis); absent otherwise (NATS). */
  contiguous?: boolean;
}

/**
 * The end of a membership (`geo.left`): the answer to the client's `geo.leave` (no `code`),
 * or the server ending it on its own (with `code`, e.g. `FORBIDDEN` when a refreshed token
 * no longer allows the room).
 */
export interface LeftFrame {
  /** The room. */
  room: string;
  /** Why the server ended the membership; absent in the answer to `geo.leave`. */
  code?: string;
  /** For people, with `code`. */
  message?: string;
}

/** The server's acknowledgement of a publish (`geo.ack`): the room log stored it. */
export interface AckFrame {
  /** The publish's `event_id`. */
  event_id: string;
  /** Its position in the room log; `null` for ephemeral events (not stored). */
  seq: number | null;
  /** `true` when the log already held this `event_id`: `seq` is the original one. */
  duplicate?: boolean;
}

/** A refusal (`geo.error`), see the codes in docs/PROTOCOL.md. */
export interface ErrorFrame {
  /** Stable code to branch on (`UNAVAILABLE`, `FORBIDDEN`, …). */
  code: string;
  /** For people; may change. */
  message: string;
  /** The refused publish's `event_id`, when the frame had a valid one. */
  event_id?: string;
  /** The room the refused frame named, when it named a valid one. */
  room?: string;
}

/**
 * Close codes of the server (docs/PROTOCOL.md, "Drain and close codes"), as the server's
 * `GeoCloseCode` names them. The client reacts to them as docs/CLIENT.md describes
 * ("Close codes"); the client's `reconnect` event reports them.
 */
export const GeoCloseCode = {
  /** 1008: the connection exhausted its refusal budget (`limits.refusals`). The client reconnects to the same region after a growing delay. */
  POLICY_VIOLATION: 1008,
  /** 1009: a frame exceeded the hard size cap. The client reconnects to the same region after a growing delay. */
  MESSAGE_TOO_BIG: 1009,
  /** 1012: the region restarts or drains. The client moves to its next region at once and resumes. */
  SERVICE_RESTART: 1012,
  /** 1013: slow consumer: the client did not read its events fast enough. The client reconnects to the same region after a growing delay and resumes. */
  SLOW_CONSUMER: 1013,
  /** 4001: the token expired and was not refreshed with `geo.auth`. The client reconnects (with backoff), calling `token` again. */
  TOKEN_EXPIRED: 4001,
  /** 4002: no frame from the client for `limits.idleTimeoutMs`. The client reconnects with backoff. */
  IDLE_TIMEOUT: 4002,
  /**
   * 4003: the token was revoked (`geo.error UNAUTHORIZED` first). The client reconnects (with
   * backoff), calling `token` again: a region refuses a revoked token (401), and the client then stops.
   */
  TOKEN_REVOKED: 4003,
  /**
   * 4004: a refreshed token (`geo.auth`) may not be used in this region. The client reconnects
   * (with backoff), calling `token` again; a region that refuses that token (403) stops it.
   */
  REGION_FORBIDDEN: 4004,
  /**
   * 4008: the user has the server's `limits.maxConnectionsPerUser` connections open there
   * already (`geo.error TOO_MANY_CONNECTIONS` first). The client reconnects to the same region
   * after a growing delay; an upgrade refused with HTTP 429 for it is handled the same.
   */
  TOO_MANY_CONNECTIONS: 4008,
} as const;

/**
 * Close codes the client sends when it ends a connection itself. Besides 1000 they are
 * in 4100–4199, a range the server does not use, so a close code always tells who closed
 * and why.
 */
export const GeoClientCloseCode = {
  /** 1000: `close()`: the app is done with the client. */
  CLOSED: 1000,
  /** 4100: the client moves to another region (`moveTo()`, `driftBackMs`, a `geo.reconnect` from a draining region). */
  MOVING: 4100,
  /** 4101: the region accepted the connection but did not complete it with `geo.welcome` in time (twice `heartbeatMs`, at most 10 s). */
  NO_WELCOME: 4101,
  /** 4102: no frame, not even `geo.pong`, for `heartbeatMs + heartbeatTimeoutMs`: the connection is dead. */
  SILENT: 4102,
} as const;

/**
 * The parts of a WebSocket the client uses: the browser's `WebSocket`, Node's global one
 * (undici, Node 22 and later) and `ws` all fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** Set to `'arraybuffer'` when present, so a binary frame can be read at once (undici and browsers default to Blob). */
  binaryType?: string;
  /** A text frame (a string) or a binary frame (bytes, with a binary codec). */
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: EventHandler<unknown> | null;
  onmessage: EventHandler<{ data: unknown }> | null;
  onclose: EventHandler<{ code: number; reason: string }> | null;
  onerror: EventHandler<unknown> | null;
}

/**
 * An `on…` handler. Declared as a method's type, so that TypeScript compares its event
 * bivariantly: `ws`'s class (handlers of its own `CloseEvent`, `MessageEvent`, …), the
 * browser's and undici's then fit {@link WebSocketConstructor} without a cast.
 */
export type EventHandler<E> = { handle(event: E): void }['handle'];

/** A WebSocket class: the browser's `WebSocket`, or `ws`'s in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
