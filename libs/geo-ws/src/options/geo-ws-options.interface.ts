import type { GeoTransportFactory } from '../transport/geo-transport.interface.js';
import type { ResolvedHomeMoves } from '../homes/home-follower.js';
import type { GeoPlacement } from '../transport/room-home.js';
import type { GeoAuthenticator } from '../auth/geo-principal.js';
import type { GeoMetricsOptions, ResolvedGeoMetricsOptions } from '../metrics/geo-metrics.options.js';

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
  /**
   * The home region of each global room: where its log lives and its events are ordered.
   * Members in the home region get their room's events without a round trip to another
   * region; appends from elsewhere pay one. Called at a room's first append, on transports
   * that place rooms one by one (memory, NATS with `roomHomes`; docs/TRANSPORTS.md), and
   * at its first join: a room the answer names a region for is placed then, so its first
   * event waits for no placement (`'auto'` or `undefined` leave it to the first append).
   * Default: the region that appends first.
   * @example placement: (room) => room.split(':')[0] // rooms named "eu:support-42" live in eu
   */
  placement?: GeoPlacement;
  /**
   * When rooms whose `placement` answer is `'auto'` move (docs/TRANSPORTS.md, "Moves"): once
   * more than `share` of a room's events over the last `windowMs` were published in one
   * region (at least ten), that region moves the room's log to itself. A room stays at
   * least `windowMs` where it moved. Defaults: `share` 0.6, `windowMs` 30,000.
   */
  homeMoves?: { share?: number; windowMs?: number };
  /** The WebSocket path on the app's HTTP server. Default `/ws`. */
  path?: string;
  /**
   * Browser origins allowed to open a WebSocket (exact match, e.g. `https://chat.example`),
   * against cross-site WebSocket hijacking. Upgrades without an `Origin` header (non-browser
   * clients) are allowed; an empty `Origin:` is refused like a foreign one. Default: any origin.
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
  /** Graceful drain on shutdown: how long clients get to move after `geo.reconnect`. Default 6000 ms (the drain ends once every client has left). */
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
   * permessage-deflate (RFC 7692) for clients that offer it (browsers always do). Off by
   * default: it costs CPU (one zlib call per event and codec, and inflating what clients
   * compress), and compressing a secret with attacker-chosen text in one frame leaks it
   * through the frame's size (CRIME/BREACH; docs/SECURITY.md). Room events from
   * `thresholdBytes` (default 1024) up are compressed, others sent as they are; `level` is
   * zlib's, 1-9 (default 3). No context takeover either way: each frame is compressed alone,
   * once for every member, and no connection keeps a compression window.
   */
  compression?: false | GeoWsCompressionOptions;
  /**
   * Sessions: each connection's rooms and positions, kept in the transport's state store
   * so a client reconnecting anywhere with `?session=<id>` gets them back. Saved on
   * membership changes only (join, leave, close or drain), never per event or on a timer;
   * kept `ttlMs` after the last save (default 1 h). A new connection waits at most
   * `loadTimeoutMs` (default 2000) for the session it names, then gets a new one.
   * On by default; `false` turns them off.
   */
  sessions?:
    | false
    | {
        ttlMs?: number;
        loadTimeoutMs?: number;
        /** @deprecated Ignored: sessions are saved on membership changes, not periodically (a warning is logged). */
        saveEveryMs?: number;
      };
  /**
   * Prometheus metrics with `prom-client` (an optional peer: install it to turn this on).
   * Off by default. `true`: prom-client's default registry, served at `GET /metrics`.
   * `path: false` registers the metrics without serving them, for apps that already serve
   * `/metrics` (e.g. `@willsoto/nestjs-prometheus`, which reads the default registry).
   * When on, clients are asked for consistency reports (`geo.report`). See docs/OPERATIONS.md.
   */
  metrics?: boolean | GeoMetricsOptions;
}

export interface GeoWsCompressionOptions {
  thresholdBytes?: number;
  level?: number;
}

export interface GeoWsLimits {
  /** Largest accepted frame, in bytes; larger ones get `PAYLOAD_TOO_LARGE`. Default 65536. */
  maxPayloadBytes?: number;
  /** Deepest nesting of arrays and objects in a frame; deeper ones get `MALFORMED_FRAME`. Default 32. */
  maxDepth?: number;
  /** Rooms one connection may be in at once. Default 100. */
  maxRoomsPerConnection?: number;
  /**
   * Connections one user (the principal's `id`, the token's `sub`) may have open to this
   * server at once. Past it the upgrade is refused with HTTP 429 `TOO_MANY_CONNECTIONS`
   * (and a connection opened at the same moment as others, past the check, is closed with
   * 4008). Per instance: N instances allow N times as many. Default 20; 0 turns it off.
   */
  maxConnectionsPerUser?: number;
  /**
   * Load shedding: while this instance's event loop lags more than this (the longest delay
   * of each 500 ms), new connections are refused with HTTP 503 `UNAVAILABLE` and
   * `Retry-After: 1`. A herd of arrivals (another region's clients failing over here) then
   * backs off or goes to another region instead of slowing the clients already here;
   * connections already open are never touched. Default 1000; 0 turns it off.
   */
  maxEventLoopDelayMs?: number;
  /**
   * Token bucket per connection. Every frame takes a token, well-formed or not, so garbage
   * costs as much as a publish. Default 50 frames/s, bursts of 100.
   */
  rate?: { perSecond: number; burst: number };
  /**
   * Refused frames (malformed, oversized, invalid, rate-limited, forbidden...) per
   * connection: past this budget the connection is closed with 1008 instead of being
   * answered with `geo.error` forever. Default 10/s, bursts of 500.
   */
  refusals?: { perSecond: number; burst: number };
  /** A connection that sends no frame for this long is closed (4002). Default 900000 (15 min); 0 turns it off. */
  idleTimeoutMs?: number;
  /**
   * Bytes queued for one connection that it has not read yet. Past this the client is a
   * slow consumer: it is closed with 1013 and, if it does not read even that within
   * 2 s, terminated. Default 8 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Bytes queued for all connections of this instance together. Past this the
   * connections holding the most are closed as slow consumers until it is met again, so
   * readers that stall cannot exhaust the server's memory. Default 256 MiB.
   */
  maxBufferedBytesTotal?: number;
  /** How much history this instance replays on resumes, so replays cannot starve live traffic. */
  replay?: GeoWsReplayLimits;
}

/** Budgets for replaying history to joining clients (`geo.join` with `since`). */
export interface GeoWsReplayLimits {
  /** Events replayed to one connection, over all its rooms. Default 5000/s, bursts of 10000. */
  perConnection?: { perSecond: number; burst: number };
  /** Events replayed by this instance to all connections. Default 50000/s, bursts of 100000. */
  perInstance?: { perSecond: number; burst: number };
  /** History reads (one page of `log.replayBatchSize` each) in flight at once on this instance; more wait their turn. Default 64. */
  concurrent?: number;
  /**
   * A replay pauses while its connection has more than this many bytes unsent. Default 1 MiB,
   * or half of `limits.maxBufferedBytes` when that is lower; must be below it.
   */
  highWaterBytes?: number;
  /**
   * Live events each room's feed keeps in memory, so a client resuming from a recent
   * position (a failover, a reconnect, a drain) is replayed without a read of the broker.
   * Default 256; 0 keeps none (every resume reads the log).
   */
  recentEvents?: number;
  /**
   * How long those events are kept: each is dropped one to two periods after it arrived, so
   * memory stays near the instance's event rate times two periods. Default 10000 ms.
   */
  recentMs?: number;
}

/** `limits` after defaults. */
export interface ResolvedGeoWsLimits {
  maxPayloadBytes: number;
  maxDepth: number;
  maxRoomsPerConnection: number;
  /** 0: no limit. */
  maxConnectionsPerUser: number;
  /** 0: no load shedding. */
  maxEventLoopDelayMs: number;
  rate: { perSecond: number; burst: number };
  refusals: { perSecond: number; burst: number };
  idleTimeoutMs: number;
  maxBufferedBytes: number;
  maxBufferedBytesTotal: number;
  replay: Required<GeoWsReplayLimits>;
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
  /** The home of a room this region appends first: `placement`'s answer, checked; `undefined` without `placement` (this region). */
  placeRoom: ((room: string) => string) | undefined;
  /** The region `placement` names for a room, when it names one (the room is placed at its first join); `undefined` without `placement`. */
  placeOnJoin: ((room: string) => string | undefined) | undefined;
  /** Rooms whose log follows its traffic, and when they move; `undefined` without `placement`. */
  homeMoves: ResolvedHomeMoves | undefined;
  path: string;
  authenticate: GeoAuthenticator;
  allowedOrigins: ReadonlySet<string> | undefined;
  limits: ResolvedGeoWsLimits;
  log: { dedupWindowMs: number; retention: { maxEvents: number; maxAgeMs: number }; replayBatchSize: number };
  drainGraceMs: number;
  heartbeatMs: number;
  /** Presence TTL in ms, or `undefined` when presence is off. */
  presenceTtlMs: number | undefined;
  sessions: { ttlMs: number; loadTimeoutMs: number } | undefined;
  /** `undefined` when metrics are off. */
  metrics: ResolvedGeoMetricsOptions | undefined;
  /** permessage-deflate settings, or `undefined` when compression is off. */
  compression: { thresholdBytes: number; level: number } | undefined;
}
