/**
 * Stable, machine-readable codes carried by `geo.error` frames.
 * Clients branch on these; the human text in `message` may change between versions.
 */
export const GeoErrorCode = {
  /** The frame is not JSON, or not `{ "event": string, "data": any }`. */
  MALFORMED_FRAME: 'MALFORMED_FRAME',
  /** No `@GeoSubscribe` handler (and no `geo.*` control frame) has this event name. */
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  /** `event_id`, `room_id` or `data` is missing or invalid, or the client set a server-owned field. */
  INVALID_ENVELOPE: 'INVALID_ENVELOPE',
  /** The client published to (or left) a room it has not joined. */
  NOT_JOINED: 'NOT_JOINED',
  /** The frame is larger than `limits.maxPayloadBytes`. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** The connection sent frames faster than `limits.rate` allows. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The connection has joined `limits.maxRoomsPerConnection` rooms already. */
  TOO_MANY_ROOMS: 'TOO_MANY_ROOMS',
  /**
   * The user (the principal's id) has `limits.maxConnectionsPerUser` connections to this
   * server already: the upgrade is refused with HTTP 429, or a connection opened past the
   * limit is closed with 4008.
   */
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  /** The connection's identity is missing or no longer valid. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** A guard refused the action. */
  FORBIDDEN: 'FORBIDDEN',
  /** A pipe (e.g. `ValidationPipe` with a class-validator DTO) rejected the payload. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** The handler threw a `WsException` (its message is passed through). */
  REJECTED: 'REJECTED',
  /** The room log is unreachable right now. Retryable: resend with the same `event_id`. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** An unexpected server error. Retryable with the same `event_id`. */
  INTERNAL: 'INTERNAL',
} as const;

export type GeoErrorCode = (typeof GeoErrorCode)[keyof typeof GeoErrorCode];

/** Codes after which resending the same frame (same `event_id`) may succeed. */
export const RETRYABLE_ERROR_CODES: ReadonlySet<GeoErrorCode> = new Set<GeoErrorCode>([
  GeoErrorCode.RATE_LIMITED,
  GeoErrorCode.UNAVAILABLE,
  GeoErrorCode.INTERNAL,
]);
