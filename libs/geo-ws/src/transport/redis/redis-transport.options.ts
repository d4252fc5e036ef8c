/** A Redis endpoint: a URL (`redis://host:port/db`) or ioredis options (e.g. `{ sentinels, name }`). */
export type RedisEndpoint = string | Record<string, unknown>;

/** Options of {@link redisTransport}: `primary` (standalone or Sentinel) or `cluster`. */
export interface RedisTransportOptions {
  /**
   * The primary, in the home region: every append goes there. With Sentinel, pass
   * `{ sentinels: [{ host, port }], name: 'mymaster' }`: ioredis follows failovers.
   */
  primary?: RedisEndpoint;
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
  replica?: RedisEndpoint | ((region: string) => RedisEndpoint | undefined);
  /** Separates deployments on one Redis: keys `geows:{<ns>:…}`. Default `geo`. */
  namespace?: string;
  /** A replica whose link is down, or silent for longer than this, is not read from. Default 5000. */
  maxReplicaLagMs?: number;
  /**
   * How long the epoch of a log without events (a room only joined, never published to)
   * is kept after its last read or live check; its first event makes it permanent. Any
   * client can create such logs by joining rooms, so they must not live forever. A client
   * that resumes such a room from `since: 0` after it expired is told `recovered: false`
   * (conservative: nothing was lost). Default 3600000 (one hour); at least 1000.
   */
  emptyLogTtlMs?: number;
}
