/** Metadata key of `@GeoSubscribe` (method level). */
export const GEO_SUBSCRIBE_METADATA = 'geo-ws:subscribe';
/** Metadata key of the geo-ws parameter decorators (a string: Nest builds cache keys from it). */
export const GEO_PARAM_ARGS_METADATA = '__geoWsRouteArguments__';
/** The subprotocol the server speaks; browsers send the token as a second one, `bearer.<token>`. */
export const GEO_SUBPROTOCOL = 'geo-ws.v1';
/** Nest's context type for WebSocket handlers: guards branch on `context.getType() === 'ws'`. */
export const GEO_CONTEXT_TYPE = 'ws';

/** Control frames of wire protocol v1 (see docs/PROTOCOL.md). */
export const GeoFrame = {
  JOIN: 'geo.join',
  LEAVE: 'geo.leave',
  JOINED: 'geo.joined',
  LEFT: 'geo.left',
  ACK: 'geo.ack',
  ERROR: 'geo.error',
  RECONNECT: 'geo.reconnect',
  WELCOME: 'geo.welcome',
  PING: 'geo.ping',
  AUTH: 'geo.auth',
  AUTHED: 'geo.authed',
  PONG: 'geo.pong',
} as const;

/** WebSocket close codes used by the server. */
export const GeoCloseCode = {
  /** Service restart: the server is draining; reconnect (to the region in `geo.reconnect`). */
  SERVICE_RESTART: 1012,
  /** The connection kept sending frames the server had to refuse (`limits.refusals`). */
  POLICY_VIOLATION: 1008,
  /** The frame exceeded the hard size cap (twice `limits.maxPayloadBytes`). */
  MESSAGE_TOO_BIG: 1009,
  /** Slow consumer: the client did not read its events fast enough (`limits.maxBufferedBytes`). */
  SLOW_CONSUMER: 1013,
  /** The connection's token expired and was not refreshed with `geo.auth`. */
  TOKEN_EXPIRED: 4001,
  /** No frame from the client for `limits.idleTimeoutMs`. */
  IDLE_TIMEOUT: 4002,
} as const;
