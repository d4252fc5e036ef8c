/**
 * One region per process, configured from the environment: `npm run start:region`.
 * REGION=eu PORT=3002 GEO_REGIONS=asia=http://127.0.0.1:3001,eu=... GEO_TRANSPORT=memory
 */
import { memoryTransport, type GeoTransportFactory } from '@geo-ws/nest';
import { startRegion } from './bootstrap.js';
import { ConfigError, readRegionConfig, type RegionConfig } from './config.js';

function transportFor(config: RegionConfig): GeoTransportFactory {
  switch (config.transport) {
    case 'memory':
      // One process holds only its own region's memory: regions do not share logs this way.
      return memoryTransport();
    default:
      throw new ConfigError(`GEO_TRANSPORT=${config.transport} is not available in this build yet; use memory`);
  }
}

async function main(): Promise<void> {
  const config = readRegionConfig();
  await startRegion(config, transportFor(config));
  console.log(`region ${config.region} listening on http://${config.host}:${config.port} (${config.transport} transport)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `config error: ${error.message}` : error);
  process.exit(1);
});
