import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { dropRedisNamespace } from '../../testing/broker-namespaces.js';
import type { GeoLogRef } from '../log-ref.js';
import { RedisKeys } from './redis-keys.js';
import { redisTransport } from './redis.transport.js';

const url = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';

describeTransportContract(`redis (${url})`, {
  newCluster: () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    return {
      transport: redisTransport({ primary: url, namespace }),
      dispose: () => dropRedisNamespace(url, namespace),
      // The log's keys deleted behind the transport's back, as a flush or a restart without data would.
      loseLog: async (log: GeoLogRef) => {
        const keys = new RedisKeys(namespace);
        const client = new Redis(url);
        try {
          const ids = await client.keys(keys.eventIdPattern(log));
          await client.del(keys.stream(log), keys.meta(log), ...ids);
        } finally {
          client.disconnect();
        }
      },
    };
  },
  gapFreeSeq: true,
});
