import type * as Jetstream from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type * as Kv from '@nats-io/kv';
import type * as TransportNode from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import type { NatsPublisher } from './nats-publisher.js';

/** The NATS client modules, loaded on first use so apps on other transports need not install them. */
export interface NatsModules {
  core: typeof TransportNode;
  jetstream: typeof Jetstream;
  kv: typeof Kv;
}

/** What a connected transport's parts work with: the modules and the clients of one connection. */
export interface NatsClients {
  nats: NatsModules;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Stream publishes with acks matched on one inbox (appends). */
  publisher: NatsPublisher;
}

export async function loadNats(): Promise<NatsModules> {
  try {
    const [core, jetstream, kv] = await Promise.all([
      import('@nats-io/transport-node'),
      import('@nats-io/jetstream'),
      import('@nats-io/kv'),
    ]);
    return { core, jetstream, kv };
  } catch (error) {
    throw new GeoConfigError(
      `natsTransport needs the NATS client: npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}
