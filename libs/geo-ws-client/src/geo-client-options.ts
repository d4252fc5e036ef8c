import type { GeoCodec } from './codec.js';
import type { GeoRegion, GeoRegionOption, WebSocketConstructor } from './protocol.js';

/** Options of {@link GeoClient.connect}. */
export interface GeoClientOptions {
  /** Any region's base URL (absolute http: or https:): the client reads `GET /geo/regions` from it. */
  directoryUrl?: string;
  /**
   * Or the regions themselves: `{ name, url, wsUrl? }` each, with unique names, `url` the
   * region's absolute http(s) base URL (probes, the handshake check) and `wsUrl` its
   * WebSocket URL (ws: or wss:; default `url` with `ws:`/`wss:` and `/ws` appended, as the
   * server derives it). Checked at construction: a bad entry is a `GeoClientError` with
   * code `INVALID_OPTIONS` naming it.
   * @example [{ name: 'eu', url: 'https://eu.chat.example' }, { name: 'us', url: 'https://us.chat.example', wsUrl: 'wss://us.chat.example/ws' }]
   */
  regions?: GeoRegionOption[];
  /**
   * Bearer token, or a function that returns a fresh one. Sent as the WebSocket
   * subprotocol `bearer.<token>` (browsers cannot set headers; this keeps it out of URLs
   * and access logs). A function is also called before the token expires, and the new
   * token is sent in-band (`geo.auth`), so the connection is never closed for expiry.
   * A region that refuses it (HTTP 401) makes the client call a function once more for a
   * fresh token; refused again (or a fixed string, or HTTP 403), the client gives up with
   * that code (see docs/CLIENT.md, "Refused connections").
   */
  token?: string | (() => string | Promise<string>);
  /**
   * Extra query parameters on the WebSocket URL (and on the handshake check), for the
   * server's `authenticate` function or the app to read, e.g. `{ room: 'lobby' }`.
   */
  query?: Record<string, string>;
  /**
   * The WebSocket class. Default: the global `WebSocket` (browsers, Node 22 and later).
   * Node 20 has none: pass `ws`'s (`import { WebSocket } from 'ws'`), which also lets the
   * client read the HTTP status of a refused upgrade.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * How frames are encoded: JSON text frames (default), or MessagePack binary frames with
   * `msgpackCodec` from `@geo-ws/client/msgpack` (needs the `msgpackr` package). The client
   * offers the codec's subprotocol; the same frames, envelope and limits either way.
   */
  codec?: GeoCodec;
  /** Connect only to this region. */
  pinRegion?: string;
  /** Use regions in this order instead of ranking them by RTT. */
  regionOrder?: string[];
  /** How RTT is measured (default: timing `GET /healthz`); injectable for tests. */
  probe?: RttProbe;
  /** Probes per region when ranking. Default 3. */
  probeSamples?: number;
  /** Reconnect delays, and publish retry delays. Default `{ baseMs: 250, maxMs: 8000 }`. */
  backoff?: BackoffOptions;
  /** Failed connection attempts to a region before moving to the next. Default 2: the lost region once more, then the next. */
  failoverAfter?: number;
  /**
   * Client heartbeat: `geo.ping` once no frame has arrived for this long (a connection that
   * keeps receiving sends none). Default 5000.
   */
  heartbeatMs?: number;
  /**
   * After that ping, how long the connection may stay silent (no frame at all, the pong or
   * any other) before it is dead (close code 4102) and the client reconnects, failing over
   * as after a lost connection: a silent region is left within `heartbeatMs +
   * heartbeatTimeoutMs` (10 s by default) of its last frame. Default 5000.
   */
  heartbeatTimeoutMs?: number;
  /** Check every this many ms whether a nearer region is healthy again and move back. Off by default. */
  driftBackMs?: number;
  /** Session id to resume; the server returns one otherwise (kept for you with `storage`). */
  sessionId?: string;
  /**
   * Keeps the session id and every room's position across page reloads: pass
   * `sessionStorage` (per tab) or `localStorage` (per origin), or anything with
   * `getItem`/`setItem`. A reloaded page then resumes each room it joins from where the
   * last one was (written at most every 250 ms and on `close()` or `pagehide`; see
   * docs/CLIENT.md, "Sessions"). Positions saved for another sender are not used.
   */
  storage?: PositionStorage;
  /** The key in `storage`. Default `'geo-ws'`; give each client of a page its own. */
  storageKey?: string;
  /**
   * `connect()` rejects (`TIMEOUT`) if no region accepted a connection within this time,
   * counted from `connect()`: reading the directory and probing included. Default 30000.
   */
  connectTimeoutMs?: number;
  /**
   * How many publishes of one room may be sent, counted from its oldest unacknowledged
   * one. Default 1: each is sent once the one before it is stored, so the room's log holds
   * this client's publishes in exactly `publish()` order, whatever fails. With n > 1 the
   * order holds while nothing fails; when one fails, only the n - 1 publishes after it
   * can be stored before it (see docs/CLIENT.md).
   */
  maxInFlight?: number;
  /** Times a publish answered `INTERNAL` is sent again before it is rejected. Default 3. */
  maxInternalRetries?: number;
  /** Frames larger than this (UTF-8 bytes) are rejected before sending. Default 65536, the server's `limits.maxPayloadBytes`. */
  maxFrameBytes?: number;
  /** Payloads nested deeper than the server's `limits.maxDepth` (default 32) are rejected before sending. */
  maxDepth?: number;
}

/** Reconnect and retry delays: exponential with jitter and a cap, so clients never stampede. */
export interface BackoffOptions {
  /** First ceiling, in ms. Default 250. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 8000. */
  maxMs?: number;
}

/**
 * Measures one round trip to a region, in ms; rejects if it does not answer. `signal`
 * aborts when the client no longer needs the answer (`close()`): a probe should stop then,
 * so that nothing of a closed client keeps a process alive.
 */
export type RttProbe = (region: GeoRegion, signal?: AbortSignal) => Promise<number>;

/**
 * Where a {@link GeoClient} keeps its session id and room positions across page reloads:
 * `sessionStorage` (per tab), `localStorage` (per origin), or anything with these two
 * methods (a file, IndexedDB behind a cache, a test double).
 */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}
