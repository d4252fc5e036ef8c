import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { GeoConfigError } from '../errors/geo-config.error.js';
import type { GeoAuthenticator } from '../auth/geo-principal.js';
import {
  DEFAULT_COMPRESSION,
  DEFAULT_DRAIN_GRACE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LIMITS,
  DEFAULT_PRESENCE_TTL_MS,
  DEFAULT_REPLAY_BATCH_SIZE,
  DEFAULT_RETENTION,
  DEFAULT_SESSIONS,
  MIN_DEDUP_WINDOW_MS,
} from './defaults.js';
import { resolveMetricsOptions } from '../metrics/geo-metrics.options.js';
import type { GeoRegionEndpoint, GeoWsModuleOptions, ResolvedGeoWsOptions } from './geo-ws-options.interface.js';
import type { ResolvedHomeMoves } from '../homes/home-follower.js';
import type { GeoPlacement } from '../transport/room-home.js';

const REGION_NAME = /^[a-z][a-z0-9-]{0,31}$/;

function bucket(
  value: { perSecond: number; burst: number } | undefined,
  fallback: { perSecond: number; burst: number },
  option: string,
): { perSecond: number; burst: number } {
  return {
    perSecond: positiveInteger(value?.perSecond, fallback.perSecond, `${option}.perSecond`),
    burst: positiveInteger(value?.burst, fallback.burst, `${option}.burst`),
  };
}

/** Anonymous identities: only for demos and tests, never for production. */
const anonymous: GeoAuthenticator = () => ({ id: `anon-${randomUUID().slice(0, 8)}` });

function positiveInteger(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new GeoConfigError(`${option} must be a positive integer, got ${String(value)}.`);
  }
  return value;
}

/** A positive integer, or 0 for a limit that is turned off. */
function positiveIntegerOrOff(value: number | undefined, fallback: number, option: string): number {
  if (value === 0) return 0;
  if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
    throw new GeoConfigError(`${option} must be a positive integer (or 0 to turn the limit off), got ${String(value)}.`);
  }
  return value ?? fallback;
}

function compression(value: GeoWsModuleOptions['compression']): ResolvedGeoWsOptions['compression'] {
  if (value === undefined || value === false) return undefined;
  // Options come from plain JavaScript too: `true` or `null` may be here.
  const given: unknown = value;
  if (typeof given !== 'object' || given === null) {
    throw new GeoConfigError(`compression must be false or { thresholdBytes?, level? }, got ${JSON.stringify(value)}.`);
  }
  const { thresholdBytes = DEFAULT_COMPRESSION.thresholdBytes, level = DEFAULT_COMPRESSION.level } = value;
  if (!Number.isInteger(thresholdBytes) || thresholdBytes < 0) {
    throw new GeoConfigError(
      `compression.thresholdBytes must be a non-negative integer (frames smaller than it are not compressed), got ${String(thresholdBytes)}.`,
    );
  }
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new GeoConfigError(`compression.level must be a zlib level from 1 (fastest) to 9 (smallest), got ${String(level)}.`);
  }
  return { thresholdBytes, level };
}

function endpoint(name: string, value: string | GeoRegionEndpoint | undefined, path: string): Required<GeoRegionEndpoint> {
  // Options come from plain JavaScript too: anything may be missing.
  const raw: Partial<GeoRegionEndpoint> | undefined = typeof value === 'string' ? { url: value } : value;
  let url: URL;
  try {
    url = new URL(raw?.url ?? '');
  } catch {
    throw new GeoConfigError(
      `regions.${name} must be an absolute http(s) URL such as "https://${name}.example.com", got ${JSON.stringify(raw?.url)}.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GeoConfigError(`regions.${name} must use http or https (the WebSocket URL is derived), got "${url.protocol}".`);
  }
  const base = url.toString().replace(/\/$/, '');
  const wsUrl = raw?.wsUrl ?? `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname.replace(/\/$/, '')}${path}`;
  return { url: base, wsUrl };
}

/**
 * Applies defaults and checks every option, so a misconfigured region fails at boot
 * with a message that says what to change.
 */
export function resolveOptions(options: GeoWsModuleOptions | undefined): ResolvedGeoWsOptions {
  if (!options || typeof options !== 'object') {
    throw new GeoConfigError('options are required: GeoWsModule.forRoot({ region, regions, transport }).');
  }
  const path = options.path ?? '/ws';
  if (!/^\/[\w\-./]*$/.test(path)) throw new GeoConfigError(`path must start with "/" (e.g. "/ws"), got ${JSON.stringify(path)}.`);

  const given: Partial<GeoWsModuleOptions> = options; // plain JavaScript may leave anything out
  const names = Object.keys(given.regions ?? {});
  if (names.length === 0) {
    throw new GeoConfigError(
      'regions is empty: list every region, e.g. regions: { eu: "https://eu.example.com", us: "https://us.example.com" }.',
    );
  }
  for (const name of names) {
    if (!REGION_NAME.test(name)) {
      throw new GeoConfigError(`region name "${name}" must be lower-case letters, digits and "-" (at most 32, starting with a letter).`);
    }
  }
  if (typeof options.region !== 'string' || !names.includes(options.region)) {
    throw new GeoConfigError(
      `unknown region ${JSON.stringify(options.region)}: set region to one of ${names.join(', ')} (the keys of regions).`,
    );
  }
  if (typeof options.transport !== 'function') {
    throw new GeoConfigError(
      'no transport: set transport, e.g. transport: memoryTransport() for one process, or the NATS or Redis transport.',
    );
  }
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw new GeoConfigError('authenticate must be a function (handshake) => principal | null.');
  }

  const regions = new Map(names.map((name) => [name, endpoint(name, options.regions[name], path)] as const));
  const limits = options.limits ?? {};
  const replay = limits.replay ?? {};
  const log = options.log ?? {};
  const dedupWindowMs = positiveInteger(log.dedupWindowMs, MIN_DEDUP_WINDOW_MS, 'log.dedupWindowMs');
  if (dedupWindowMs < MIN_DEDUP_WINDOW_MS) {
    throw new GeoConfigError(
      `log.dedupWindowMs must be at least ${MIN_DEDUP_WINDOW_MS} (2 minutes) so client retries are deduplicated (G1), got ${dedupWindowMs}.`,
    );
  }

  const maxAgeMs = positiveInteger(log.retention?.maxAgeMs, DEFAULT_RETENTION.maxAgeMs, 'log.retention.maxAgeMs');
  if (maxAgeMs < dedupWindowMs) {
    throw new GeoConfigError(
      `log.retention.maxAgeMs (${maxAgeMs}) must be at least log.dedupWindowMs (${dedupWindowMs}): an event must outlive the window that deduplicates its retries.`,
    );
  }

  // A replay pauses above its high water; the slow-consumer close fires above maxBufferedBytes.
  // The first must stay below the second, or a client resuming a long backlog is closed as a
  // slow consumer by its own replay, again at every resume (found by the lab's slow-consumer run).
  const maxBufferedBytes = positiveInteger(limits.maxBufferedBytes, DEFAULT_LIMITS.maxBufferedBytes, 'limits.maxBufferedBytes');
  const highWaterBytes =
    replay.highWaterBytes === undefined
      ? Math.min(DEFAULT_LIMITS.replay.highWaterBytes, Math.floor(maxBufferedBytes / 2))
      : positiveInteger(replay.highWaterBytes, DEFAULT_LIMITS.replay.highWaterBytes, 'limits.replay.highWaterBytes');
  if (highWaterBytes >= maxBufferedBytes) {
    throw new GeoConfigError(
      `limits.replay.highWaterBytes (${highWaterBytes}) must be below limits.maxBufferedBytes (${maxBufferedBytes}): a replay would fill the buffer past the slow-consumer limit and close the client it is resuming.`,
    );
  }

  // eslint-disable-next-line @typescript-eslint/no-deprecated -- read only to tell whoever still sets it that it does nothing now
  if (options.sessions && options.sessions.saveEveryMs !== undefined) {
    new Logger('GeoWsModule').warn('sessions.saveEveryMs is deprecated and ignored: sessions are saved on joins, leaves and closes only.');
  }

  return {
    region: options.region,
    regions,
    placeRoom: roomPlacement(options.placement, options.region, names),
    placeOnJoin: joinPlacement(options.placement, options.region, names),
    homeMoves: homeMoves(options, names),
    transport: options.transport,
    path,
    authenticate: options.authenticate ?? anonymous,
    allowedOrigins: options.allowedOrigins ? new Set(options.allowedOrigins.map((origin) => origin.replace(/\/$/, ''))) : undefined,
    limits: {
      maxPayloadBytes: positiveInteger(limits.maxPayloadBytes, DEFAULT_LIMITS.maxPayloadBytes, 'limits.maxPayloadBytes'),
      maxDepth: positiveInteger(limits.maxDepth, DEFAULT_LIMITS.maxDepth, 'limits.maxDepth'),
      maxRoomsPerConnection: positiveInteger(
        limits.maxRoomsPerConnection,
        DEFAULT_LIMITS.maxRoomsPerConnection,
        'limits.maxRoomsPerConnection',
      ),
      maxConnectionsPerUser: positiveIntegerOrOff(
        limits.maxConnectionsPerUser,
        DEFAULT_LIMITS.maxConnectionsPerUser,
        'limits.maxConnectionsPerUser',
      ),
      maxEventLoopDelayMs: positiveIntegerOrOff(
        limits.maxEventLoopDelayMs,
        DEFAULT_LIMITS.maxEventLoopDelayMs,
        'limits.maxEventLoopDelayMs',
      ),
      rate: bucket(limits.rate, DEFAULT_LIMITS.rate, 'limits.rate'),
      refusals: bucket(limits.refusals, DEFAULT_LIMITS.refusals, 'limits.refusals'),
      idleTimeoutMs:
        limits.idleTimeoutMs === 0 ? 0 : positiveInteger(limits.idleTimeoutMs, DEFAULT_LIMITS.idleTimeoutMs, 'limits.idleTimeoutMs'),
      maxBufferedBytes,
      maxBufferedBytesTotal: positiveInteger(
        limits.maxBufferedBytesTotal,
        DEFAULT_LIMITS.maxBufferedBytesTotal,
        'limits.maxBufferedBytesTotal',
      ),
      replay: {
        perConnection: bucket(replay.perConnection, DEFAULT_LIMITS.replay.perConnection, 'limits.replay.perConnection'),
        perInstance: bucket(replay.perInstance, DEFAULT_LIMITS.replay.perInstance, 'limits.replay.perInstance'),
        concurrent: positiveInteger(replay.concurrent, DEFAULT_LIMITS.replay.concurrent, 'limits.replay.concurrent'),
        highWaterBytes,
        recentEvents: positiveIntegerOrOff(replay.recentEvents, DEFAULT_LIMITS.replay.recentEvents, 'limits.replay.recentEvents'),
        recentMs: positiveInteger(replay.recentMs, DEFAULT_LIMITS.replay.recentMs, 'limits.replay.recentMs'),
      },
    },
    log: {
      dedupWindowMs,
      retention: {
        maxEvents: positiveInteger(log.retention?.maxEvents, DEFAULT_RETENTION.maxEvents, 'log.retention.maxEvents'),
        maxAgeMs,
      },
      replayBatchSize: positiveInteger(log.replayBatchSize, DEFAULT_REPLAY_BATCH_SIZE, 'log.replayBatchSize'),
    },
    drainGraceMs: options.drainGraceMs === undefined ? DEFAULT_DRAIN_GRACE_MS : Math.max(0, options.drainGraceMs),
    heartbeatMs: positiveInteger(options.heartbeatMs, DEFAULT_HEARTBEAT_MS, 'heartbeatMs'),
    sessions:
      options.sessions === false
        ? undefined
        : {
            ttlMs: positiveInteger(options.sessions?.ttlMs, DEFAULT_SESSIONS.ttlMs, 'sessions.ttlMs'),
            loadTimeoutMs: positiveInteger(options.sessions?.loadTimeoutMs, DEFAULT_SESSIONS.loadTimeoutMs, 'sessions.loadTimeoutMs'),
          },
    metrics: resolveMetricsOptions(options.metrics),
    compression: compression(options.compression),
    presenceTtlMs: !options.presence
      ? undefined
      : positiveInteger(options.presence === true ? undefined : options.presence.ttlMs, DEFAULT_PRESENCE_TTL_MS, 'presence.ttlMs'),
  };
}

/**
 * `placement` as transports call it: its answer must name a region. A wrong answer fails
 * the append with a message that names the room and the answer (the event is not stored;
 * the client may retry once the app is fixed), not a boot error: it depends on the room.
 */
function roomPlacement(
  placement: GeoPlacement | undefined,
  region: string,
  regions: readonly string[],
): ((room: string) => string) | undefined {
  if (placement === undefined) return undefined;
  if (typeof placement !== 'function')
    throw new GeoConfigError(`placement must be a function (room, { region, regions }) => region, got ${typeof placement}.`);
  return (room) => {
    const answer = placement(room, { region, regions });
    const home = answer === undefined || answer === 'auto' ? region : answer;
    if (!regions.includes(home)) {
      throw new GeoConfigError(
        `placement returned ${JSON.stringify(home)} for room "${room}": it must return one of ${regions.join(', ')}, 'auto', or undefined.`,
      );
    }
    return home;
  };
}

/**
 * The region `placement` names for a room at its first join, when it names one; never
 * throws (a wrong answer is reported by the room's first append, see {@link roomPlacement}).
 */
function joinPlacement(
  placement: GeoPlacement | undefined,
  region: string,
  regions: readonly string[],
): ((room: string) => string | undefined) | undefined {
  if (typeof placement !== 'function') return undefined;
  return (room) => {
    try {
      const answer = placement(room, { region, regions });
      return answer !== undefined && answer !== 'auto' && regions.includes(answer) ? answer : undefined;
    } catch {
      return undefined;
    }
  };
}

/** Defaults of `homeMoves`. */
export const DEFAULT_HOME_MOVES = { share: 0.6, windowMs: 30_000 };

/** `homeMoves`, checked: rooms follow their traffic only where `placement` answers `'auto'`. */
function homeMoves(options: GeoWsModuleOptions, regions: readonly string[]): ResolvedHomeMoves | undefined {
  const { placement, homeMoves: given = {} } = options;
  if (placement === undefined || typeof placement !== 'function') {
    if (options.homeMoves) throw new GeoConfigError("homeMoves needs a placement that answers 'auto' for the rooms that move.");
    return undefined;
  }
  const share = given.share ?? DEFAULT_HOME_MOVES.share;
  if (!(share >= 0.5 && share < 1)) {
    throw new GeoConfigError(`homeMoves.share must be at least 0.5 and below 1 (one region's share of a room's events), got ${share}.`);
  }
  const windowMs = positiveInteger(given.windowMs, DEFAULT_HOME_MOVES.windowMs, 'homeMoves.windowMs');
  const { region } = options;
  const follows = (room: string): boolean => {
    try {
      return placement(room, { region, regions }) === 'auto';
    } catch {
      return false; // its first append reports the error; delivery must not trip on it
    }
  };
  return { follows, share, windowMs };
}
