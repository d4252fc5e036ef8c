/** A Redis endpoint: a URL (`redis://host:port/db`) or ioredis options (e.g. `{ sentinels, name }`). */
export type GeoRedisEndpoint = string | Record<string, unknown>;

/** Options of {@link redisTransport}: `primary` (standalone or Sentinel) or `cluster`. */
export interface GeoRedisTransportOptions {
  /**
   * The primary, in the home region: every append goes there. With Sentinel, pass
   * `{ sentinels: [{ host, port }], name: 'mymaster' }`: ioredis follows failovers.
   */
  primary?: GeoRedisEndpoint;
  /**
   * Redis Cluster instead of one primary: its startup nodes, and options for ioredis's
   * `Cluster`. Reads go to the masters; `replica` does not apply.
   */
  cluster?: { nodes: { host: string; port: number }[]; options?: Record<string, unknown> };
  /**
   * This region's replica (`replicaof` the primary): live tails and replays read from it,
   * falling back to the primary while it is down or lagging. A function gets the region.
   * @example replica: (region) => `redis://redis-${region}.internal:6379`
   */
  replica?: GeoRedisEndpoint | ((region: string) => GeoRedisEndpoint | undefined);
  /** Separates deployments on one Redis: keys `geows:{<ns>:…}`. Default `geo`. */
  namespace?: string;
  /** A replica whose link is down, or silent for longer than this, is not read from. Default 5000. */
  maxReplicaLagMs?: number;
  /**
   * How long a log's epoch and counter (its meta hash) are kept after the log was last
   * read or tailed while it has no events (a room only joined), or beyond the retention
   * (`maxAgeMs`) after its last append. Any client can create logs by joining rooms, so
   * none may live forever. A client that resumes a room after its meta expired is told
   * `recovered: false` (conservative: it may have lost nothing). Default 3600000 (one
   * hour); at least 10000.
   */
  emptyLogTtlMs?: number;
}
