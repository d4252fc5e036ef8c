// The names and numbers of wire protocol v1, in one place (docs/PROTOCOL.md describes them).
/** The subprotocol the server speaks; browsers send the token as a second one, `bearer.<token>`. */
export const GEO_SUBPROTOCOL = 'geo-ws.v1';
/** The same protocol in MessagePack binary frames (docs/PROTOCOL.md, "Subprotocols and codecs"). */
export const GEO_MSGPACK_SUBPROTOCOL = 'geo-ws.v1.msgpack';

/**
 * Default for `limits.maxDepth`: how deep a frame's `data` may nest arrays and objects (the
 * client SDK checks the same before sending). options/defaults.ts lists it with the other limits.
 */
export const DEFAULT_MAX_DEPTH = 32;

/** How a connection's frames are encoded: JSON text frames, or MessagePack binary frames. */
export type GeoWireCodec = 'json' | 'msgpack';

/**
 * The subprotocol the server answers with among those a client offers: the first one it
 * speaks, in the client's order (never `bearer.<token>`, which carries a credential).
 */
export function chooseSubprotocol(offered: Iterable<string>): string | false {
  for (const protocol of offered) if (protocol === GEO_SUBPROTOCOL || protocol === GEO_MSGPACK_SUBPROTOCOL) return protocol;
  return false;
}

/** The codec a negotiated subprotocol means (none: JSON, as before subprotocols had codecs). */
export function codecOf(subprotocol: string): GeoWireCodec {
  return subprotocol === GEO_MSGPACK_SUBPROTOCOL ? 'msgpack' : 'json';
}

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

/**
 * What this server speaks beyond wire protocol v1 as first published, listed in
 * `geo.welcome` `features` so a client uses an addition only where it is understood.
 */
export const GeoFeature = {
  /** `geo.join { rooms: [...] }`: many rooms in one frame (docs/PROTOCOL.md, "Joining many rooms at once"). */
  JOIN_ROOMS: 'join.rooms',
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
  /** The connection's token was revoked (`GeoWsServer.revoke`, in any region): `geo.error UNAUTHORIZED` first. */
  TOKEN_REVOKED: 4003,
  /**
   * A `geo.auth` refresh brought a token that may not be used in this region (its `regions`
   * claim): the connection ends as the upgrade would refuse it (HTTP 403), after `geo.error FORBIDDEN`.
   */
  REGION_FORBIDDEN: 4004,
  /**
   * The user has `limits.maxConnectionsPerUser` connections to this server already (opened
   * at the same moment as others, past the upgrade's check): `geo.error TOO_MANY_CONNECTIONS` first.
   */
  TOO_MANY_CONNECTIONS: 4008,
} as const;
