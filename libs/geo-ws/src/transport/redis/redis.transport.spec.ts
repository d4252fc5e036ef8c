import { randomUUID } from 'node:crypto';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { dropRedisNamespace } from '../../../../../test/support/redis-servers.js';
import { redisTransport } from './redis.transport.js';

const url = process.env.GEO_REDIS_URL ?? 'redis://127.0.0.1:6379';

describeTransportContract(`redis (${url})`, {
  newCluster: () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    return { transport: redisTransport({ primary: url, namespace }), dispose: () => dropRedisNamespace(url, namespace) };
  },
  gapFreeSeq: true,
});
