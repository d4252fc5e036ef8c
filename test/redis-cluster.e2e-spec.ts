import { afterAll, beforeAll } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { redisTransport } from '@geo-ws/nest';
import { describeTransportContract } from '@geo-ws/nest/testing';
import { startCluster } from '../apps/lab/src/topology/redis-servers.js';

/** The shared transport contract on a three-master Redis Cluster started by the test. */
let cluster: Awaited<ReturnType<typeof startCluster>>;

beforeAll(async () => {
  cluster = await startCluster(3);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describeTransportContract('redis cluster (3 masters)', {
  newCluster: () => ({ transport: redisTransport({ cluster: { nodes: cluster.nodes }, namespace: `c${randomUUID().slice(0, 8)}` }) }),
  gapFreeSeq: true,
});
