import { GeoConfigError } from '../errors/geo-config.error.js';

/**
 * The part of a `prom-client` `Registry` geo-ws uses. Declared here so that apps without
 * prom-client (metrics off) compile against geo-ws's types; a prom-client `Registry` fits.
 */
export interface GeoMetricsRegistry {
  /** The text exposition of every metric of the registry. */
  metrics(): Promise<string>;
  readonly contentType: string;
  getSingleMetric(name: string): unknown;
}

/** `metrics` option of `GeoWsModule.forRoot()` when it is an object. */
export interface GeoMetricsOptions {
  /**
   * Where the registry is served on the app's HTTP server. Default `/metrics`. `false`: no
   * endpoint (the app serves the registry itself, e.g. with `@willsoto/nestjs-prometheus`).
   */
  path?: string | false;
  /** Default: prom-client's default registry (`register`), the one `@willsoto/nestjs-prometheus` serves. */
  registry?: GeoMetricsRegistry;
  /** Prefix of every metric name. Default `geows_`. */
  prefix?: string;
  /** How often clients send `geo.report` (announced as `report_ms` in `geo.welcome`). Default 30000 ms. */
  reportMs?: number;
}

export interface ResolvedGeoMetricsOptions {
  path: string | false;
  registry: GeoMetricsRegistry | undefined;
  prefix: string;
  reportMs: number;
}

export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_METRICS_PREFIX = 'geows_';
export const DEFAULT_REPORT_MS = 30_000;

/** Shortest report interval: reports are deltas, and each takes a frame of the client's rate budget. */
const MIN_REPORT_MS = 1000;

export function resolveMetricsOptions(metrics: boolean | GeoMetricsOptions | undefined): ResolvedGeoMetricsOptions | undefined {
  if (!metrics) return undefined;
  const given: GeoMetricsOptions = metrics === true ? {} : metrics;
  const path = given.path ?? DEFAULT_METRICS_PATH;
  if (path !== false && (typeof path !== 'string' || !/^\/[\w\-./]*$/.test(path))) {
    throw new GeoConfigError(`metrics.path must start with "/" (e.g. "/metrics") or be false, got ${JSON.stringify(path)}.`);
  }
  const prefix = given.prefix ?? DEFAULT_METRICS_PREFIX;
  if (typeof prefix !== 'string' || !/^([a-zA-Z_][a-zA-Z0-9_]*)?$/.test(prefix)) {
    throw new GeoConfigError(`metrics.prefix must be a Prometheus name prefix such as "geows_", got ${JSON.stringify(prefix)}.`);
  }
  const reportMs = given.reportMs ?? DEFAULT_REPORT_MS;
  if (!Number.isInteger(reportMs) || reportMs < MIN_REPORT_MS) {
    throw new GeoConfigError(`metrics.reportMs must be an integer of at least ${MIN_REPORT_MS}, got ${String(reportMs)}.`);
  }
  if (given.registry !== undefined && typeof given.registry.metrics !== 'function') {
    throw new GeoConfigError('metrics.registry must be a prom-client Registry (new Registry() or register).');
  }
  return { path, registry: given.registry, prefix, reportMs };
}
