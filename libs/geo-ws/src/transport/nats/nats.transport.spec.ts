import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomUUID } from 'node:crypto';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { NatsNames } from './nats-names.js';
import { natsTransport } from './nats.transport.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Deletes every stream of a test namespace (room logs and KV buckets). */
async function dropNamespace(namespace: string): Promise<void> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    const names = new NatsNames(namespace);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(names.globalStream) || name.startsWith(`KV_geows_${namespace}_`)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

describeTransportContract(`nats (JetStream at ${servers})`, {
  newCluster: () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    return { transport: natsTransport({ servers, namespace }), dispose: () => dropNamespace(namespace) };
  },
});
