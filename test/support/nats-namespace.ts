import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomUUID } from 'node:crypto';

/** A fresh namespace per test file, so runs on a shared NATS never see each other's rooms. */
export function testNamespace(prefix: string): string {
  return `${prefix}${randomUUID().slice(0, 6)}`.toLowerCase();
}

/** Deletes the streams and KV buckets of a namespace on the server at `servers`. */
export async function dropNatsNamespace(servers: string, namespace: string): Promise<void> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`GEOWS_${namespace.toUpperCase()}`) || name.startsWith(`KV_geows_${namespace}_`)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}
