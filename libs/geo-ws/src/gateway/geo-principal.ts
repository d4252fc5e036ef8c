import type { IncomingMessage } from 'node:http';

/** The authenticated identity of a connection. `id` becomes every envelope's `sender`. */
export interface GeoPrincipal {
  id: string;
  /** Claims or profile data for guards (e.g. allowed regions and rooms). */
  claims?: Record<string, unknown>;
}

/** What an authenticator sees of the WebSocket upgrade request. */
export interface GeoHandshake {
  request: IncomingMessage;
  url: URL;
  /** The bearer token from `Authorization` or the `access_token` query parameter, if any. */
  token?: string;
}

/**
 * Decides who a connection is, at the upgrade (Nest guards do not run on connect).
 * Return `null` or throw to refuse the connection with HTTP 401.
 */
export type GeoAuthenticator = (handshake: GeoHandshake) => GeoPrincipal | null | Promise<GeoPrincipal | null>;
