// Clean-up of what a test deployment left on a shared broker: the library's integration
// specs and the repository's e2e suites use these (not exported from @geo-ws/nest/testing).
// The broker clients are loaded on call, like the transports load them.
import { loadNats } from '../transport/nats/load-nats.js';
import { NatsNames } from '../transport/nats/nats-names.js';
import { loadRedis } from '../transport/redis/load-redis.js';

/** Deletes the streams and KV buckets of one namespace (and of no other) on the NATS server at `servers`. */
export async function dropNatsNamespace(servers: string, namespace: string): Promise<void> {
  const { core, jetstream } = await loadNats();
  const names = new NatsNames(namespace);
  const buckets = new Set(Object.values(names.kv).map((bucket) => `KV_${bucket}`));
  // The global stream, its regional (`_R_`), room-home (`_H_`) and mirror (`_M_`) streams, and the buckets.
  const ours = (stream: string) =>
    stream === names.globalStream ||
    ['_R_', '_H_', '_M_'].some((kind) => stream.startsWith(`${names.globalStream}${kind}`)) ||
    buckets.has(stream);
  const nc = await core.connect({ servers });
  try {
    const jsm = await jetstream.jetstreamManager(nc);
    for await (const name of jsm.streams.names()) if (ours(name)) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}

/** Deletes every key of one namespace (and of no other) on the Redis server at `url`. */
export async function dropRedisNamespace(url: string, namespace: string): Promise<void> {
  const { Redis } = await loadRedis();
  const client = new Redis(url);
  try {
    // Log keys share a hash tag `{<ns>:…}`; sessions and revocations are `geows:<ns>:…`.
    for (const pattern of [`geows:\\{${namespace}:*`, `geows:${namespace}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}
