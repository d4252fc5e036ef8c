/**
 * One region per process, configured from the environment: `npm run start:region`.
 * REGION=eu PORT=3002 GEO_REGIONS=asia=http://127.0.0.1:3001,eu=... GEO_TRANSPORT=memory
 */
import { startRegion } from './bootstrap.js';
import { ConfigError, readRegionConfig } from './config.js';
import { transportFor } from './transports.js';

async function main(): Promise<void> {
  const config = readRegionConfig();
  await startRegion(config, transportFor(config));
  console.log(`region ${config.region} listening on http://${config.host}:${config.port} (${config.transport} transport)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `config error: ${error.message}` : error);
  process.exit(1);
});
