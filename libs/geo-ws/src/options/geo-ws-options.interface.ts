import type { GeoTransportFactory } from '../transport/geo-transport.interface.js';
import type { GeoAuthenticator } from '../gateway/geo-principal.js';

/** Where clients reach a region: its public base URL (http/https; ws URLs are derived). */
export interface GeoRegionEndpoint {
  /** Public HTTP base URL, e.g. `https://eu.chat.example.com`. */
  url: string;
  /** Public WebSocket URL; default: `url` with `ws(s)://` and the module's `path`. */
  wsUrl?: string;
}

/** Options of `GeoWsModule.forRoot()` / `forRootAsync()`. */
export interface GeoWsModuleOptions {
  /** This process's region; must be a key of `regions`. */
  region: string;
  /**
   * Every region of the deployment (name → public URL). Served at `GET /geo/regions`
   * so clients can pick the nearest one and fail over to the next.
   * @example { asia: 'https://asia.example.com', eu: { url: 'https://eu.example.com' } }
   */
  regions: Record<string, string | GeoRegionEndpoint>;
  /** The room log. @example memoryTransport(), natsTransport({...}), redisTransport({...}) */
  transport: GeoTransportFactory;
  /** The WebSocket path on the app's HTTP server. Default `/ws`. */
  path?: string;
  /**
   * Browser origins allowed to open a WebSocket (exact match, e.g. `https://chat.example`),
   * against cross-site WebSocket hijacking. Upgrades without an `Origin` (non-browser
   * clients) are allowed. Default: any origin.
   */
  allowedOrigins?: string[];
  /**
   * Who a connection is. Runs on every WebSocket upgrade, before the socket opens; a
   * throw or `null` refuses the upgrade with HTTP 401. Default: anonymous identities
   * (`anon-<id>`), for demos only.
   */
  authenticate?: GeoAuthenticator;
  limits?: GeoWsLimits;
  log?: GeoWsLogOptions;
  /** Graceful drain on shutdown: how long clients get to move after `geo.reconnect`. Default 2000 ms. */
  drainGraceMs?: number;
  /** WebSocket ping interval; a connection that missed one pong is dropped. Default 30000 ms. */
  heartbeatMs?: number;
  /**
   * Track who is in each room across regions (`GET /geo/presence/:room`). Off by default:
   * it writes to the broker on every join and every `ttlMs / 3` per membership.
   * `true` means a 30 s TTL.
   */
  presence?: boolean | { ttlMs?: number };
  /**
   * Sessions: each connection's rooms and positions, kept in the transport's state store
   * so a client reconnecting anywhere with `?session=<id>` gets them back. On by default
   * (kept 1 h, saved every 5 s while they change); `false` turns them off.
   */
  sessions?: false | { ttlMs?: number; saveEveryMs?: number };
}

export interface GeoWsLimits {
  /** Largest accepted frame, in bytes; larger ones get `PAYLOAD_TOO_LARGE`. Default 65536. */
  maxPayloadBytes?: number;
  /** Rooms one connection may be in at once. Default 100. */
  maxRoomsPerConnection?: number;
  /** Token bucket per connection. Default 50 frames/s, bursts of 100. */
  rate?: { perSecond: number; burst: number };
  /** A connection that sends no frame for this long is closed (4002). Default 900000 (15 min); 0 turns it off. */
  idleTimeoutMs?: number;
}

export interface GeoWsLogOptions {
  /** How long an `event_id` is remembered for deduplication; at least 120000. Default 120000. */
  dedupWindowMs?: number;
  /** History kept per room log for resume: whichever limit is hit first. Default 10000 events, 24 h. */
  retention?: { maxEvents?: number; maxAgeMs?: number };
  /** Events fetched per read while replaying a resume. Default 500. */
  replayBatchSize?: number;
}

/** Options after defaults and validation: what the rest of the module reads. */
export interface ResolvedGeoWsOptions {
  region: string;
  regions: ReadonlyMap<string, Required<GeoRegionEndpoint>>;
  transport: GeoTransportFactory;
  path: string;
  authenticate: GeoAuthenticator;
  allowedOrigins: ReadonlySet<string> | undefined;
  limits: Required<GeoWsLimits>;
  log: { dedupWindowMs: number; retention: { maxEvents: number; maxAgeMs: number }; replayBatchSize: number };
  drainGraceMs: number;
  heartbeatMs: number;
  /** Presence TTL in ms, or `undefined` when presence is off. */
  presenceTtlMs: number | undefined;
  sessions: { ttlMs: number; saveEveryMs: number } | undefined;
}
