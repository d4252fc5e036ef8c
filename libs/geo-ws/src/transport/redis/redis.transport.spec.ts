import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { redisTransport } from './redis.transport.js';

const url = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Deletes every key of a test namespace. */
async function dropNamespace(namespace: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `geows:*${namespace}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

describeTransportContract(`redis (${url})`, {
  newCluster: () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    return { transport: redisTransport({ primary: url, namespace }), dispose: () => dropNamespace(namespace) };
  },
  gapFreeSeq: true,
});
