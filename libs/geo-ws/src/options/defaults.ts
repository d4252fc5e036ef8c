// Every default of geo-ws in one place: the module's options and the microservice client
// read them from here, and the README's option table states the same values. The frame
// nesting depth is the wire protocol's own (protocol/wire.ts), listed here with the rest.
import { DEFAULT_MAX_DEPTH } from '../protocol/wire.js';

/** Shortest dedup window: client retries within it are stored once (G1). */
export const MIN_DEDUP_WINDOW_MS = 120_000;

/** History kept per room log for resume: whichever limit is hit first. */
export const DEFAULT_RETENTION = { maxEvents: 10_000, maxAgeMs: 24 * 60 * 60 * 1000 } as const;

/** Events per read while replaying a resume. */
export const DEFAULT_REPLAY_BATCH_SIZE = 500;

const MIB = 1024 * 1024;

/** `limits` when not set (see `GeoWsLimits` for what each one bounds). */
export const DEFAULT_LIMITS = {
  maxPayloadBytes: 64 * 1024,
  maxDepth: DEFAULT_MAX_DEPTH,
  maxRoomsPerConnection: 100,
  maxConnectionsPerUser: 20,
  maxEventLoopDelayMs: 1000,
  rate: { perSecond: 50, burst: 100 },
  refusals: { perSecond: 10, burst: 500 },
  idleTimeoutMs: 15 * 60 * 1000,
  maxBufferedBytes: 8 * MIB,
  maxBufferedBytesTotal: 256 * MIB,
  replay: {
    perConnection: { perSecond: 5000, burst: 10_000 },
    perInstance: { perSecond: 50_000, burst: 100_000 },
    concurrent: 64,
    highWaterBytes: MIB,
    recentEvents: 256,
    recentMs: 10_000,
  },
} as const;

/** Lifecycle and state-store defaults. */
/**
 * Longer than the SDK's own handover bound (5 s, `HANDOVER_MAX_MS` in @geo-ws/client): a
 * drain never cuts a client that is still moving its rooms to the next region. The drain
 * ends as soon as the last client has left, so a grace nobody needs costs nothing. The
 * lab's `drain` with 2 s: 60 of 1,000 clients cut before their handover ended.
 */
export const DEFAULT_DRAIN_GRACE_MS = 6000;
export const DEFAULT_HEARTBEAT_MS = 30_000;
export const DEFAULT_SESSIONS = { ttlMs: 60 * 60 * 1000, loadTimeoutMs: 2000 } as const;
export const DEFAULT_PRESENCE_TTL_MS = 30_000;

/**
 * permessage-deflate when `compression` is on: frames from 1 KiB up (smaller ones gain
 * little and cost a zlib call each), zlib level 3 (most of level 6's ratio on JSON events
 * at about half its CPU).
 */
export const DEFAULT_COMPRESSION = { thresholdBytes: 1024, level: 3 } as const;
