import { memoryTransport, natsTransport, redisTransport, type GeoTransportFactory, type GeoMemoryNetwork } from '@geo-ws/nest';
import type { RegionConfig } from './config.js';

/**
 * The transport a region runs on, from its configuration. `network` is the memory
 * network shared by the regions of one process (memory transport only).
 */
export function transportFor(config: RegionConfig, network?: GeoMemoryNetwork): GeoTransportFactory {
  switch (config.transport) {
    case 'memory':
      // Without a shared network a process holds only its own region's logs.
      return memoryTransport({ network });
    case 'nats':
      return natsTransport({
        servers: config.nats.url,
        namespace: config.namespace,
        homeCluster: config.nats.homeCluster,
        replicas: config.nats.replicas,
        roomHomes: config.nats.roomHomes,
      });
    case 'redis':
      return redisTransport({ primary: config.redis.url, replica: config.redis.replicaUrl, namespace: config.namespace });
  }
}
