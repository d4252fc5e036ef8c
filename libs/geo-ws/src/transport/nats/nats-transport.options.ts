/** Options of {@link natsTransport}. */
export interface GeoNatsTransportOptions {
  /**
   * NATS server URLs. A function gets the region, so each region's app connects to its
   * own region's cluster in a supercluster.
   * @example servers: (region) => `nats://nats.${region}.internal:4222`
   */
  servers: string | string[] | ((region: string) => string | string[]);
  /** Separates deployments on one NATS system: streams `GEOWS_<NS>`, subjects `geows.<ns>.…`. Default `geo`. */
  namespace?: string;
  /**
   * Extra options for `connect()` of `@nats-io/transport-node` (credentials, TLS, name,
   * …). Typed loosely so apps that do not use NATS need not install its types.
   */
  connection?: Record<string, unknown>;
  /**
   * Supercluster only: the cluster that holds global room logs and the KV buckets (the
   * "home" region). Regional logs are placed in the cluster named by `regionalCluster`.
   */
  homeCluster?: string;
  /**
   * Each global room's log lives in the stream of its own home region (`GEOWS_<NS>_H_<REGION>`,
   * in that region's cluster), chosen at its first append by the module's `placement`, and
   * recorded in the `geows_<ns>_homes` bucket. Members in a room's home region then get its
   * events without a round trip to another region. Off by default: on, global logs no longer
   * live in the `homeCluster` stream, so turn it on for a new namespace (docs/TRANSPORTS.md,
   * "Room homes"). `homeCluster` still places the KV buckets.
   */
  roomHomes?: boolean;
  /**
   * With `roomHomes`: each region keeps a mirror of every other region's home stream in its
   * own cluster (`GEOWS_<NS>_M_<HOME>_<HERE>`) and reads live events from it, so fan-out
   * never waits on a consumer in another region's cluster, and events already copied keep
   * flowing to members while that cluster is away. Appends and reads still go to the home
   * stream (the one order). Default: on when the streams are placed by cluster (`homeCluster`
   * or `regionalCluster` set: a supercluster), off otherwise.
   */
  mirrors?: boolean;
  /** Cluster of each region's regional logs and room homes; default: the region's name when `homeCluster` is set. */
  regionalCluster?: (region: string) => string | undefined;
  /** Stream replicas: 3 on a stretched cluster to survive losing a region. Default 1. */
  replicas?: number;
  /** Default `file`. */
  storage?: 'file' | 'memory';
  /**
   * `create` (default): create the streams and KV buckets, or bring them to the configured
   * limits. `verify`: only use existing ones (for side services such as `GeoEventsClient`
   * that must not change the apps' stream settings).
   */
  setup?: 'create' | 'verify';
  /**
   * Live tails of one stream on this instance from which the stream is read through one
   * consumer (sorted to the rooms here) instead of one consumer per room. Default 64
   * (docs/TRANSPORTS.md, "Many rooms on NATS", has the measurements); `1` reads every
   * stream through one consumer, `Infinity` never.
   */
  sharedTailFrom?: number;
  /**
   * A live tail that hears nothing from NATS (no event, no heartbeat) for this long, while
   * it keeps asking for a new consumer, fails: its room's members are told and join again
   * (and get `UNAVAILABLE` until JetStream answers) instead of waiting in silence. Default
   * 30000, at least 5000.
   */
  tailGiveUpMs?: number;
  /**
   * With `roomHomes`: after how long without an answer from a room's home region (its
   * cluster's home stream, asked once a second) the next region to append to the room takes
   * it over, under a new epoch (docs/TRANSPORTS.md, "Takeover"). Default 5000, at least
   * 2000; `Infinity` never takes over (appends wait for the home to come back).
   */
  takeoverAfterMs?: number;
  /** Time limit of each JetStream request; past it the operation fails as unavailable. Default 5000. */
  requestTimeoutMs?: number;
  /**
   * Upper bounds of the KV buckets' ages (NATS 2.9 expires whole buckets, not keys; the
   * store also checks each entry's own expiry). Defaults: sessions 24 h, presence 5 min,
   * revocations 7 days (keep it above your longest token lifetime).
   */
  stateTtlMs?: { sessions?: number; presence?: number; revocations?: number };
}
