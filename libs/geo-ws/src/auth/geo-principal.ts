import type { IncomingMessage } from 'node:http';

/** The authenticated identity of a connection. `id` becomes every envelope's `sender`. */
export interface GeoPrincipal {
  id: string;
  /** Claims or profile data for guards. */
  claims?: Record<string, unknown>;
  /**
   * Regions where the identity may connect and act; `undefined`: all. Enforced by the server.
   * From `jwtAuthenticator`, this list (and `rooms`) is shared by every principal with the same
   * list, and frozen: read it, never modify it.
   */
  regions?: string[];
  /** Room patterns it may join and publish to (`team.*`); `undefined`: all. Enforced by the server. */
  rooms?: string[];
  /** When the credential expires (epoch ms): the connection is closed then unless refreshed with `geo.auth`. */
  expiresAt?: number;
  /** Revocation key (`jti` or token digest), checked before `critical` actions. */
  tokenId?: string;
}

/** What an authenticator sees of the WebSocket upgrade request. */
export interface GeoHandshake {
  /** The upgrade request; absent when a token is refreshed in-band (`geo.auth`). */
  request?: IncomingMessage;
  url: URL;
  /**
   * The bearer token: from `Authorization: Bearer`, a `bearer.<token>` WebSocket
   * subprotocol (browsers), or the `access_token` query parameter, in that order.
   */
  token?: string;
}

/**
 * Decides who a connection is, at the upgrade (Nest guards do not run on connect).
 * Return `null` or throw to refuse the connection with HTTP 401.
 */
export type GeoAuthenticator = (handshake: GeoHandshake) => GeoPrincipal | null | Promise<GeoPrincipal | null>;
