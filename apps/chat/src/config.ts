import type { GeoRegionEndpoint } from '@geo-ws/nest';

/** One region's settings, read from the environment (see the README's table). */
export interface RegionConfig {
  region: string;
  port: number;
  host: string;
  regions: Record<string, GeoRegionEndpoint>;
  transport: 'memory' | 'nats' | 'redis';
  /** Simulated one-way delay between regions for the memory transport, in ms. */
  interRegionDelayMs: number;
  /** Undefined: the library's default. */
  drainGraceMs: number | undefined;
  /** A client whose unsent bytes pass this is closed (1013) and resumes; `undefined`: the library's default (8 MiB). */
  maxBufferedBytes: number | undefined;
  /** permessage-deflate for frames from this many bytes up (`GEO_COMPRESSION_THRESHOLD`); `undefined`: compression off. */
  compressionThresholdBytes: number | undefined;
  /** Only warnings and errors in the log (the three-region demo sets it to keep output readable). */
  quiet: boolean;
  /** `GEO_METRICS=1`: Prometheus metrics at `GET /metrics` (geo-ws's `metrics: true`). */
  metrics: boolean;
  /** Separates deployments sharing one broker. */
  namespace: string;
  nats: { url: string; homeCluster?: string; replicas: number; roomHomes: boolean };
  /**
   * `GEO_PLACEMENT=named`: a room named `<region>:<name>` (`eu:support`) lives in that region,
   * placed at its first join; other rooms where their first event was published.
   */
  namedPlacement: boolean;
  /**
   * `GEO_PLACEMENT=auto`: each room's log follows its traffic (geo-ws's `placement: () => 'auto'`),
   * moved after `GEO_HOME_MOVE_WINDOW_MS` (default the library's 30 s) of mostly one region's
   * events; `undefined` (`first-append`, the default): a room lives where its first event was published.
   */
  homeMoves: { windowMs: number | undefined } | undefined;
  redis: { url: string; replicaUrl?: string };
  auth: AuthConfig;
  /**
   * Origins whose pages may open a WebSocket (`Origin` header); clients without one
   * (servers, the SDK in Node) are not affected. `undefined`: any origin.
   */
  allowedOrigins: string[] | undefined;
  /** `NODE_ENV=production`. */
  production: boolean;
}

/**
 * `demo` (default): every region runs the demo token authority (`POST /demo/token`) with
 * one shared secret: DEMO ONLY. `jwt`: tokens from your authority, checked with its JWKS
 * (`GEO_JWKS_URL`) or a shared secret (`GEO_JWT_SECRET`).
 */
export type AuthConfig = DemoAuthConfig | { mode: 'jwt'; issuer: string; audience: string; jwksUrl?: string; secret?: string };

export interface DemoAuthConfig {
  mode: 'demo';
  secret: string;
  /** Signing with {@link DEMO_SECRET}, which is in this repository: anyone can sign tokens. Never in production. */
  publicSecret: boolean;
  issuer: string;
  audience: string;
  /** Tokens `POST /demo/token` hands out per minute to one client address (`GEO_DEMO_TOKENS_PER_MINUTE`). */
  tokensPerMinute: number;
}

/** DEMO ONLY: the demo authority's signing secret when GEO_DEMO_SECRET is not set. Public: refused in production. */
export const DEMO_SECRET = 'geo-ws-demo-secret-do-not-use-in-production';

/** How long a demo token lives, and the longest lifetime the demo authority's regions accept (`exp - iat`). */
export const DEMO_TOKEN_LIFETIME_S = 10 * 60;

export const DEFAULT_REGIONS = 'asia=http://127.0.0.1:3001,eu=http://127.0.0.1:3002,us=http://127.0.0.1:3003';

/** Thrown for a bad environment variable; the message names the variable and the fix. */
export class ConfigError extends Error {}

/** Parses `asia=http://127.0.0.1:3001,eu=...` into a directory. */
export function parseRegions(value: string): Record<string, GeoRegionEndpoint> {
  const regions: Record<string, GeoRegionEndpoint> = {};
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [name, url] = entry.split(/=(.*)/s, 2);
    if (!name || !url) throw new ConfigError(`GEO_REGIONS: "${entry}" is not name=url (e.g. eu=http://127.0.0.1:3002)`);
    regions[name.trim()] = { url: url.trim() };
  }
  if (Object.keys(regions).length === 0) throw new ConfigError('GEO_REGIONS is empty; e.g. ' + DEFAULT_REGIONS);
  return regions;
}

/** An environment variable, with "" read as unset. */
function variable(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** `1` or `0`; unset: `fallback`. */
function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = variable(env, name);
  if (raw === undefined) return fallback;
  if (raw !== '1' && raw !== '0') throw new ConfigError(`${name} must be 1 or 0, got "${raw}"`);
  return raw === '1';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

/**
 * `GEO_NATS_URL` is one URL for every region, or `region=url` pairs (comma-separated)
 * so each region connects to its own cluster of a supercluster. `GEO_REDIS_REPLICA_URL`
 * works the same way (a region without an entry reads from the primary).
 */
export function natsUrlFor(value: string, region: string): string {
  return urlFor(value, region, 'GEO_NATS_URL', false)!;
}

/** One URL for every region, or this region's entry of `region=url` pairs. */
function urlFor(value: string, region: string, variable: string, optional: boolean): string | undefined {
  if (!value.includes('=')) return value;
  const url = (parseRegions(value) as Partial<Record<string, GeoRegionEndpoint>>)[region]?.url;
  if (!url && !optional) throw new ConfigError(`${variable} has no entry for region "${region}"`);
  return url;
}

/**
 * `GEO_PLACEMENT`: `first-append` (default), `named` (rooms named `<region>:…` live there) or
 * `auto` (rooms follow their traffic); the last two on memory, or NATS with room homes.
 */
function readPlacement(
  env: NodeJS.ProcessEnv,
  transport: RegionConfig['transport'],
  roomHomes: boolean,
): Pick<RegionConfig, 'namedPlacement' | 'homeMoves'> {
  const placement = variable(env, 'GEO_PLACEMENT') ?? 'first-append';
  if (placement === 'first-append') return { namedPlacement: false, homeMoves: undefined };
  if (placement !== 'auto' && placement !== 'named')
    throw new ConfigError(`GEO_PLACEMENT must be first-append, named or auto, got "${placement}"`);
  if (transport === 'redis' || (transport === 'nats' && !roomHomes)) {
    throw new ConfigError(
      `GEO_PLACEMENT=${placement} places room logs in different regions: it needs GEO_TRANSPORT=memory, or nats with GEO_NATS_ROOM_HOMES=1`,
    );
  }
  if (placement === 'named') return { namedPlacement: true, homeMoves: undefined };
  const windowMs = variable(env, 'GEO_HOME_MOVE_WINDOW_MS') === undefined ? undefined : integer(env, 'GEO_HOME_MOVE_WINDOW_MS', 0);
  return { namedPlacement: false, homeMoves: { windowMs } };
}

/** Reads one region's configuration. `PORT` defaults to the port in that region's URL. */
export function readRegionConfig(env: NodeJS.ProcessEnv = process.env): RegionConfig {
  const regions = parseRegions(env.GEO_REGIONS ?? DEFAULT_REGIONS);
  const region = env.REGION ?? Object.keys(regions)[0];
  if (!Object.hasOwn(regions, region))
    throw new ConfigError(`REGION "${region}" is not in GEO_REGIONS (${Object.keys(regions).join(', ')})`);
  const transport = env.GEO_TRANSPORT ?? 'memory';
  if (transport !== 'memory' && transport !== 'nats' && transport !== 'redis') {
    throw new ConfigError(`GEO_TRANSPORT must be memory, nats or redis, got "${transport}"`);
  }
  const urlPort = Number(new URL(regions[region].url).port || 80);
  const production = env.NODE_ENV === 'production';
  const roomHomes = flag(env, 'GEO_NATS_ROOM_HOMES', true);
  return {
    region,
    port: integer(env, 'PORT', urlPort),
    host: env.HOST ?? '127.0.0.1',
    regions,
    transport,
    interRegionDelayMs: integer(env, 'GEO_INTER_REGION_DELAY_MS', 40),
    drainGraceMs: variable(env, 'GEO_DRAIN_GRACE_MS') === undefined ? undefined : integer(env, 'GEO_DRAIN_GRACE_MS', 0),
    maxBufferedBytes: variable(env, 'GEO_MAX_BUFFERED_BYTES') === undefined ? undefined : integer(env, 'GEO_MAX_BUFFERED_BYTES', 0),
    compressionThresholdBytes:
      variable(env, 'GEO_COMPRESSION_THRESHOLD') === undefined ? undefined : integer(env, 'GEO_COMPRESSION_THRESHOLD', 0),
    quiet: env.GEO_QUIET === '1',
    metrics: env.GEO_METRICS === '1',
    namespace: env.GEO_NAMESPACE ?? 'chat',
    nats: {
      url: natsUrlFor(env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222', region),
      homeCluster: env.GEO_NATS_HOME_CLUSTER || undefined,
      replicas: integer(env, 'GEO_NATS_REPLICAS', 1),
      roomHomes,
    },
    ...readPlacement(env, transport, roomHomes),
    auth: readAuth(env, production),
    allowedOrigins: readAllowedOrigins(env, regions),
    production,
    redis: {
      url: env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379',
      replicaUrl: env.GEO_REDIS_REPLICA_URL ? urlFor(env.GEO_REDIS_REPLICA_URL, region, 'GEO_REDIS_REPLICA_URL', true) : undefined,
    },
  };
}

/** What to set instead of the demo's public secret; every refusal of it says so. */
const REAL_AUTHORITY =
  'Set GEO_AUTH=jwt with GEO_JWT_ISSUER, GEO_JWT_AUDIENCE and GEO_JWKS_URL (or GEO_JWT_SECRET) to use your token authority; ' +
  'or, to run the demo authority in production on purpose, a private GEO_DEMO_SECRET (at least 32 bytes, the same in every region).';

function readAuth(env: NodeJS.ProcessEnv, production: boolean): AuthConfig {
  const mode = variable(env, 'GEO_AUTH') ?? 'demo';
  if (mode === 'demo') {
    const secret = variable(env, 'GEO_DEMO_SECRET') ?? DEMO_SECRET;
    const publicSecret = secret === DEMO_SECRET;
    if (production && publicSecret) {
      throw new ConfigError(
        `NODE_ENV=production and the demo token authority (GEO_AUTH unset or demo) would sign with its public secret, so anyone could sign a token for any name. ${REAL_AUTHORITY}`,
      );
    }
    if (Buffer.byteLength(secret) < 32) throw new ConfigError('GEO_DEMO_SECRET must be at least 32 bytes (HS256)');
    const tokensPerMinute = integer(env, 'GEO_DEMO_TOKENS_PER_MINUTE', 30);
    if (tokensPerMinute < 1) throw new ConfigError('GEO_DEMO_TOKENS_PER_MINUTE must be at least 1');
    return { mode, secret, publicSecret, issuer: 'geo-ws-demo', audience: 'geo-ws-chat', tokensPerMinute };
  }
  if (mode !== 'jwt') throw new ConfigError(`GEO_AUTH must be demo or jwt, got "${mode}"`);
  const [issuer, audience, jwksUrl, secret] = ['GEO_JWT_ISSUER', 'GEO_JWT_AUDIENCE', 'GEO_JWKS_URL', 'GEO_JWT_SECRET'].map((name) =>
    variable(env, name),
  );
  if (!issuer || !audience) throw new ConfigError('GEO_AUTH=jwt needs GEO_JWT_ISSUER and GEO_JWT_AUDIENCE');
  if (!jwksUrl === !secret) throw new ConfigError('GEO_AUTH=jwt needs exactly one of GEO_JWKS_URL or GEO_JWT_SECRET');
  if (production && secret === DEMO_SECRET) throw new ConfigError(`GEO_JWT_SECRET is the demo's public secret. ${REAL_AUTHORITY}`);
  return { mode, issuer, audience, jwksUrl, secret };
}

/**
 * Logged by every region that runs the demo authority (even with GEO_QUIET): it hands out
 * tokens for any unreserved name, and on the public secret anyone can sign their own.
 */
export function demoAuthorityWarning(config: RegionConfig): string | undefined {
  if (config.auth.mode !== 'demo') return undefined;
  const signing = config.auth.publicSecret
    ? ' It signs with the PUBLIC demo secret from the source code, so anyone can sign their own tokens too: never expose this region.'
    : ' It signs with GEO_DEMO_SECRET.';
  return (
    `WARNING: region ${config.region} runs the demo token authority (GEO_AUTH=demo, DEMO ONLY): POST /demo/token gives anyone a ` +
    `${DEMO_TOKEN_LIFETIME_S / 60}-minute token for any unreserved name (${config.auth.tokensPerMinute} a minute per address).${signing} ` +
    'For real users set GEO_AUTH=jwt with GEO_JWKS_URL or GEO_JWT_SECRET.'
  );
}

/** Loopback hosts: a page on one of them may be opened under any of the others. */
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * `GEO_ALLOWED_ORIGINS` (comma-separated origins, or `*` for any), else the origins of the
 * regions' own URLs, where the page is served: every region's page opens panes on every
 * region. A loopback region URL also allows the same port on the other loopback names.
 */
export function readAllowedOrigins(env: NodeJS.ProcessEnv, regions: Record<string, GeoRegionEndpoint>): string[] | undefined {
  const configured = variable(env, 'GEO_ALLOWED_ORIGINS');
  if (configured?.trim() === '*') return undefined;
  if (configured !== undefined) {
    return configured
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean)
      .map((entry) => originOf(entry, 'GEO_ALLOWED_ORIGINS'));
  }
  const origins = new Set<string>();
  for (const { url } of Object.values(regions)) {
    const parsed = new URL(originOf(url, 'GEO_REGIONS'));
    origins.add(parsed.origin);
    if (LOOPBACK.includes(parsed.hostname)) {
      for (const host of LOOPBACK) origins.add(`${parsed.protocol}//${host}${parsed.port ? `:${parsed.port}` : ''}`);
    }
  }
  return [...origins];
}

function originOf(value: string, variableName: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${variableName}: "${value}" is not a URL (e.g. https://chat.example.com)`);
  }
  if (url.origin === 'null') throw new ConfigError(`${variableName}: "${value}" has no origin (use http:// or https://)`);
  return url.origin;
}
