import { memoryTransport, natsTransport, type GeoTransportFactory, type MemoryNetwork } from '@geo-ws/nest';
import { ConfigError, type RegionConfig } from './config.js';

/**
 * The transport a region runs on, from its configuration. `network` is the memory
 * network shared by the regions of one process (memory transport only).
 */
export function transportFor(config: RegionConfig, network?: MemoryNetwork): GeoTransportFactory {
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
      });
    default:
      throw new ConfigError(`GEO_TRANSPORT=${config.transport} is not available in this build yet; use memory or nats`);
  }
}
