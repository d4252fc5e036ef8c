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
  drainGraceMs: number;
  /** Only warnings and errors in the log (the three-region demo sets it to keep output readable). */
  quiet: boolean;
  /** Separates deployments sharing one broker. */
  namespace: string;
  nats: { url: string; homeCluster?: string; replicas: number };
  redis: { url: string; replicaUrl?: string };
  auth: AuthConfig;
}

/**
 * `demo` (default): every region runs the demo token authority (`POST /demo/token`) with
 * one shared secret: DEMO ONLY. `jwt`: tokens from your authority, checked with its JWKS
 * (`GEO_JWKS_URL`) or a shared secret (`GEO_JWT_SECRET`).
 */
export type AuthConfig =
  | { mode: 'demo'; secret: string; issuer: string; audience: string }
  | { mode: 'jwt'; issuer: string; audience: string; jwksUrl?: string; secret?: string };

/** DEMO ONLY: the demo authority's signing secret when GEO_DEMO_SECRET is not set. */
export const DEMO_SECRET = 'geo-ws-demo-secret-do-not-use-in-production';

export const DEFAULT_REGIONS = 'asia=http://127.0.0.1:3001,eu=http://127.0.0.1:3002,us=http://127.0.0.1:3003';

/** Thrown for a bad environment variable; the message names the variable and the fix. */
export class ConfigError extends Error {}

/** Parses `asia=http://127.0.0.1:3001,eu=...` into a directory. */
export function parseRegions(value: string): Record<string, GeoRegionEndpoint> {
  const regions: Record<string, GeoRegionEndpoint> = {};
  for (const entry of value.split(',').map((part) => part.trim()).filter(Boolean)) {
    const [name, url] = entry.split(/=(.*)/s, 2);
    if (!name || !url) throw new ConfigError(`GEO_REGIONS: "${entry}" is not name=url (e.g. eu=http://127.0.0.1:3002)`);
    regions[name.trim()] = { url: url.trim() };
  }
  if (Object.keys(regions).length === 0) throw new ConfigError('GEO_REGIONS is empty; e.g. ' + DEFAULT_REGIONS);
  return regions;
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
  const url = parseRegions(value)[region]?.url;
  if (!url && !optional) throw new ConfigError(`${variable} has no entry for region "${region}"`);
  return url;
}

/** Reads one region's configuration. `PORT` defaults to the port in that region's URL. */
export function readRegionConfig(env: NodeJS.ProcessEnv = process.env): RegionConfig {
  const regions = parseRegions(env.GEO_REGIONS ?? DEFAULT_REGIONS);
  const region = env.REGION ?? Object.keys(regions)[0];
  if (!regions[region]) throw new ConfigError(`REGION "${region}" is not in GEO_REGIONS (${Object.keys(regions).join(', ')})`);
  const transport = env.GEO_TRANSPORT ?? 'memory';
  if (transport !== 'memory' && transport !== 'nats' && transport !== 'redis') {
    throw new ConfigError(`GEO_TRANSPORT must be memory, nats or redis, got "${transport}"`);
  }
  const urlPort = Number(new URL(regions[region].url).port || 80);
  return {
    region,
    port: integer(env, 'PORT', urlPort),
    host: env.HOST ?? '127.0.0.1',
    regions,
    transport,
    interRegionDelayMs: integer(env, 'GEO_INTER_REGION_DELAY_MS', 40),
    drainGraceMs: integer(env, 'GEO_DRAIN_GRACE_MS', 2000),
    quiet: env.GEO_QUIET === '1',
    namespace: env.GEO_NAMESPACE ?? 'chat',
    nats: {
      url: natsUrlFor(env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222', region),
      homeCluster: env.GEO_NATS_HOME_CLUSTER || undefined,
      replicas: integer(env, 'GEO_NATS_REPLICAS', 1),
    },
    auth: readAuth(env),
    redis: {
      url: env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379',
      replicaUrl: env.GEO_REDIS_REPLICA_URL ? urlFor(env.GEO_REDIS_REPLICA_URL, region, 'GEO_REDIS_REPLICA_URL', true) : undefined,
    },
  };
}

function readAuth(env: NodeJS.ProcessEnv): AuthConfig {
  const mode = env.GEO_AUTH ?? 'demo';
  if (mode === 'demo') {
    return { mode, secret: env.GEO_DEMO_SECRET ?? DEMO_SECRET, issuer: 'geo-ws-demo', audience: 'geo-ws-chat' };
  }
  if (mode !== 'jwt') throw new ConfigError(`GEO_AUTH must be demo or jwt, got "${mode}"`);
  const { GEO_JWT_ISSUER: issuer, GEO_JWT_AUDIENCE: audience, GEO_JWKS_URL: jwksUrl, GEO_JWT_SECRET: secret } = env;
  if (!issuer || !audience) throw new ConfigError('GEO_AUTH=jwt needs GEO_JWT_ISSUER and GEO_JWT_AUDIENCE');
  if (!jwksUrl === !secret) throw new ConfigError('GEO_AUTH=jwt needs exactly one of GEO_JWKS_URL or GEO_JWT_SECRET');
  return { mode, issuer, audience, jwksUrl, secret };
}
