import { createHash, webcrypto } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { GeoConfigError } from '../errors/geo-config.error.js';
import type { GeoAuthenticator, GeoPrincipal } from './geo-principal.js';

const HMAC_ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512']);

/**
 * The secret as one verification key per allowed HS* algorithm, imported once. Given the
 * raw bytes, jose imports a key for every token it verifies (a region taking in 1,000
 * failing-over clients spent 1 % of its CPU on it, lab region-down --cpu-prof).
 */
function hmacKeys(secret: string, algorithms: readonly string[]): JWTVerifyGetKey {
  const bytes = new TextEncoder().encode(secret);
  const keys = new Map<string, Promise<webcrypto.CryptoKey>>();
  for (const algorithm of algorithms) {
    const hash = { name: `SHA-${algorithm.slice(2)}` };
    keys.set(algorithm, webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash }, false, ['verify']));
  }
  // jose refuses an algorithm not on the list before it asks for a key.
  return ({ alg }) => keys.get(alg) ?? Promise.reject(new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`));
}

/** Options of {@link jwtAuthenticator}: one token authority for every region. */
export interface GeoJwtOptions {
  /** `iss` every token must carry. */
  issuer: string;
  /** `aud` every token must carry. */
  audience: string;
  /** HS256 shared secret (at least 32 bytes). Give this or `jwksUrl`. */
  secret?: string;
  /** The authority's JWKS (RS256/ES256 keys by `kid`); unknown `kid`s trigger one refetch, rate-limited. */
  jwksUrl?: string;
  /** Accepted algorithms. Default `['HS256']` with a secret, `['RS256', 'ES256']` with a JWKS. Never `none`. */
  algorithms?: string[];
  /** Allowed clock skew for `exp`/`nbf`, in seconds. Default 30. */
  clockToleranceSec?: number;
  /** Least time between two JWKS refetches, in ms (an unknown `kid` refetches at most this often). Default 30000. */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before the JWKS is read again (ends the overlap of a rotated-out key). Default 600000. */
  jwksCacheMaxAgeMs?: number;
  /**
   * Longest lifetime accepted, in seconds: tokens must carry `iat`, and `exp - iat` may not
   * exceed it (nor `iat` lie in the future). Caps what a leaked signing key or token is
   * worth, e.g. the sample app's demo authority accepts its own 10-minute tokens only.
   * Default: no cap (only `exp`).
   */
  maxTokenLifetimeSec?: number;
  /** Claim names. Defaults: `regions`, `rooms`. */
  claims?: { regions?: string; rooms?: string };
}

const ASYMMETRIC = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

/**
 * Verifies JWTs from one token authority at the WebSocket handshake (and on `geo.auth`
 * refreshes). Algorithms are pinned per key type, so an HS256 token signed with an RSA
 * public key (algorithm confusion) or `alg: none` never verifies; `iss`, `aud`, `exp` and
 * `nbf` are checked with a small clock tolerance. Claims: `sub` → `sender`, `regions` →
 * where the token may connect and act, `rooms` → patterns it may join and publish to.
 *
 * @example authenticate: jwtAuthenticator({ issuer: 'https://auth.example', audience: 'chat', jwksUrl: 'https://auth.example/.well-known/jwks.json' })
 */
export function jwtAuthenticator(options: GeoJwtOptions): GeoAuthenticator {
  const { issuer, audience } = options;
  if (!issuer || !audience)
    throw new GeoConfigError('jwtAuthenticator: issuer and audience are required, so tokens for other services are refused.');
  if (!options.secret === !options.jwksUrl)
    throw new GeoConfigError('jwtAuthenticator: give exactly one of secret (HS256) or jwksUrl (RS256/ES256).');
  const algorithms = options.algorithms ?? (options.secret ? ['HS256'] : ['RS256', 'ES256']);
  if (algorithms.some((algorithm) => algorithm.toLowerCase() === 'none'))
    throw new GeoConfigError('jwtAuthenticator: the "none" algorithm is never accepted.');
  if (options.secret) {
    if (algorithms.some((algorithm) => !HMAC_ALGORITHMS.has(algorithm)))
      throw new GeoConfigError('jwtAuthenticator: a secret verifies HS256, HS384 and HS512 only.');
    if (Buffer.byteLength(options.secret) < 32) throw new GeoConfigError('jwtAuthenticator: the HS256 secret must be at least 32 bytes.');
  } else if (algorithms.some((algorithm) => !ASYMMETRIC.has(algorithm))) {
    throw new GeoConfigError('jwtAuthenticator: a JWKS verifies asymmetric algorithms only (RS256, ES256, ...).');
  }
  const key: JWTVerifyGetKey = options.secret
    ? hmacKeys(options.secret, algorithms)
    : createRemoteJWKSet(new URL(options.jwksUrl!), {
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      });
  const { maxTokenLifetimeSec } = options;
  if (maxTokenLifetimeSec !== undefined && !(maxTokenLifetimeSec > 0))
    throw new GeoConfigError('jwtAuthenticator: maxTokenLifetimeSec must be a positive number of seconds.');
  const clockTolerance = options.clockToleranceSec ?? 30;
  const regionsClaim = options.claims?.regions ?? 'regions';
  const roomsClaim = options.claims?.rooms ?? 'rooms';

  return async ({ token }) => {
    if (!token) return null;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        issuer,
        audience,
        algorithms,
        clockTolerance,
        requiredClaims: maxTokenLifetimeSec === undefined ? ['sub', 'exp'] : ['sub', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof errors.JOSEError) return null; // invalid, expired, wrong audience, unknown key...
      throw error;
    }
    if (maxTokenLifetimeSec !== undefined && !withinLifetime(payload, maxTokenLifetimeSec, clockTolerance)) return null;
    // The principal lives as long as its connection: what every token repeats is held once.
    // jose checked `iss` (and a string `aud`) equal to ours, so ours can stand in for them.
    payload.iss = issuer;
    if (typeof payload.aud === 'string') payload.aud = audience;
    const regions = claimList(payload, regionsClaim);
    const rooms = claimList(payload, roomsClaim);
    const principal: GeoPrincipal = {
      id: payload.sub!,
      claims: payload,
      expiresAt: payload.exp! * 1000,
      tokenId: tokenIdOf(payload, token),
      regions,
      rooms,
    };
    return principal;
  };
}

/** `exp - iat` within the cap, and `iat` not in the future (a token cannot extend its own life). */
function withinLifetime(payload: JWTPayload, maxSec: number, toleranceSec: number): boolean {
  const { iat, exp } = payload;
  if (typeof iat !== 'number' || typeof exp !== 'number') return false;
  return exp - iat <= maxSec && iat <= Date.now() / 1000 + toleranceSec;
}

/** The revocation key of a token: its `jti`, or a digest of the token when it has none. */
export function tokenIdOf(payload: JWTPayload, token: string): string {
  if (typeof payload.jti === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(payload.jti)) return payload.jti;
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * A list claim (`regions`, `rooms`) as a list of its strings. Equal lists are shared, frozen,
 * by every principal (and by the claims, when the claim held nothing but strings): tokens
 * of one deployment mostly carry the same few lists, and two private copies per connection
 * cost ~370 bytes (V8 sizes a filtered array for growth).
 */
function claimList(payload: JWTPayload, claim: string): string[] | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return sharedList([]);
  const strings = value.filter((item): item is string => typeof item === 'string');
  const shared = sharedList(strings);
  if (strings.length === value.length) payload[claim] = shared;
  return shared;
}

/** Distinct lists kept; past this the table starts again (principals keep the lists they hold). */
const MAX_SHARED_LISTS = 1024;
const sharedLists = new Map<string, string[]>();

function sharedList(items: string[]): string[] {
  const key = JSON.stringify(items);
  let list = sharedLists.get(key);
  if (list === undefined) {
    if (sharedLists.size >= MAX_SHARED_LISTS) sharedLists.clear();
    list = Object.freeze(items.slice()) as string[];
    sharedLists.set(key, list);
  }
  return list;
}
