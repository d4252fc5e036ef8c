import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describeTransportContract } from '../../testing/transport-contract.js';
import { dropNatsNamespace } from '../../testing/broker-namespaces.js';
import { describe, expect, it } from '@jest/globals';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { LogRef } from '../log-ref.js';
import { NatsNames } from './nats-names.js';
import { natsTransport, type NatsTransport } from './nats.transport.js';

const servers = process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222';

describeTransportContract(`nats (JetStream at ${servers})`, {
  newCluster: () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    return {
      transport: natsTransport({ servers, namespace }),
      dispose: () => dropNatsNamespace(servers, namespace),
      // The log's stream deleted and created again with the same configuration, as after a
      // server lost its store and an app set the stream up again.
      loseLog: async (log: LogRef) => {
        const nc = await connect({ servers });
        try {
          const jsm = await jetstreamManager(nc);
          const name = new NatsNames(namespace).stream(log);
          const { config } = await jsm.streams.info(name);
          await jsm.streams.delete(name);
          await jsm.streams.add(config);
        } finally {
          await nc.close();
        }
      },
    };
  },
});

describe('NATS transport specifics', () => {
  const context = { region: 'eu', regions: ['eu'], dedupWindowMs: 120_000, retention: { maxEvents: 100, maxAgeMs: 3_600_000 } };

  it('a recreated stream is a new epoch, so no client resumes old positions against new history', async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const log = { room: 'lobby', scope: 'global' } as const;
    const draft = () => ({
      event_id: randomUUID(),
      room_id: 'lobby',
      type: 't.e',
      sender: 's',
      timestamp: new Date().toISOString(),
      region: 'eu',
      data: null,
    });
    const before = natsTransport({ servers, namespace })(context) as NatsTransport;
    await before.connect();
    const old = await before.append(log, draft());
    await before.close();
    await dropNatsNamespace(servers, namespace);
    const after = natsTransport({ servers, namespace })(context) as NatsTransport;
    try {
      await after.connect();
      const fresh = await after.append(log, draft());
      expect(fresh.epoch).not.toBe(old.epoch);
      expect((await after.head(log)).epoch).toBe(fresh.epoch);
    } finally {
      await after.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  it('a configuration the server refuses fails the boot at once with a GeoConfigError that names the fix', async () => {
    const namespace = `t${randomUUID().slice(0, 8)}`;
    const transport = natsTransport({ servers, namespace, replicas: 3 })(context) as NatsTransport;
    try {
      const started = Date.now();
      const error = await transport.connect().catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(GeoConfigError);
      expect((error as Error).message).toMatch(/set replicas to 1 or cluster the servers/);
      expect(Date.now() - started).toBeLessThan(5000); // not retried as if the cluster were still forming
    } finally {
      await transport.close();
      await dropNatsNamespace(servers, namespace);
    }
  });

  it('fails with a clear message when the server is unreachable', async () => {
    const transport = await natsTransport({
      servers: 'nats://127.0.0.1:1',
      namespace: 'unreachable',
      connection: { maxReconnectAttempts: 0, timeout: 500 },
    })(context);
    await expect(transport.connect()).rejects.toThrow(/cannot reach NATS/);
    await expect(transport.connect()).rejects.toBeInstanceOf(GeoTransportUnavailableError);
    expect(transport.isReady()).toBe(false);
  });
});
