// The names and numbers of wire protocol v1, in one place (docs/PROTOCOL.md describes them).
/** The subprotocol the server speaks; browsers send the token as a second one, `bearer.<token>`. */
export const GEO_SUBPROTOCOL = 'geo-ws.v1';

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
