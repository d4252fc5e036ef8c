import { GeoClientError } from '../errors.js';
import { jsonCodec, type GeoCodec } from '../codec.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { BEARER_PREFIX, type WebSocketConstructor } from '../protocol.js';
import { DEFAULT_HEARTBEAT_MS } from './heartbeat.js';
import type { RankedRegion } from './nearest-region.js';
import type { Dial } from './region-connection.js';

/** The longest wait for `geo.welcome` (otherwise twice `heartbeatMs`). */
const MAX_WELCOME_WAIT_MS = 10_000;

/** What one attempt is made from. */
export interface DialPlan {
  options: GeoClientOptions;
  region: RankedRegion;
  /** The region's WebSocket URL (or a draining region's suggestion). */
  url: URL;
  /** The session to ask back (`session` query parameter). */
  sessionId: string | undefined;
  Socket: WebSocketConstructor;
  codec: GeoCodec;
  lifetime: AbortSignal;
}

/**
 * Prepares one attempt: the URL with the app's query and the session, a token (from the
 * `token` function, called for every attempt), the subprotocols. Throws `UNAUTHORIZED`
 * when the `token` function fails.
 */
export async function prepareDial(plan: DialPlan): Promise<Dial> {
  const { options, region, url, sessionId, Socket, codec, lifetime } = plan;
  for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
  if (sessionId) url.searchParams.set('session', sessionId);
  let token: string | undefined;
  try {
    token = typeof options.token === 'function' ? await options.token() : options.token;
  } catch (error) {
    throw new GeoClientError('UNAUTHORIZED', `the token function failed: ${(error as Error).message}`);
  }
  // JSON needs no subprotocol (the server's default); another codec is always asked for.
  const protocols = token ? [codec.subprotocol, `${BEARER_PREFIX}${token}`] : codec === jsonCodec ? undefined : [codec.subprotocol];
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  return { region, url, token, protocols, Socket, codec, welcomeWaitMs: Math.min(MAX_WELCOME_WAIT_MS, 2 * heartbeatMs), lifetime };
}
