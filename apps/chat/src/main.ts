/**
 * The demo: three regions (asia, eu, us) as three Nest apps in one process, over the
 * in-memory transport with a simulated delay between regions. `npm start`.
 */
import { MemoryNetwork, memoryTransport } from '@geo-ws/nest';
import { startRegion } from './bootstrap.js';
import { ConfigError, readRegionConfig } from './config.js';

async function main(): Promise<void> {
  const base = readRegionConfig({ ...process.env, REGION: undefined, PORT: undefined });
  if (base.transport !== 'memory') {
    throw new ConfigError('npm start runs every region in one process on the memory transport; use npm run start:region for nats or redis');
  }
  const network = new MemoryNetwork({ delayMs: base.interRegionDelayMs });
  const names = Object.keys(base.regions);
  const apps: Awaited<ReturnType<typeof startRegion>>[] = [];
  for (const region of names) {
    const config = readRegionConfig({ GEO_QUIET: '1', ...process.env, REGION: region, PORT: undefined });
    apps.push(await startRegion(config, memoryTransport({ network })));
  }
  const first = base.regions[names[0]].url;
  console.log('');
  console.log(`geo-ws demo: ${names.length} regions in one process, ${base.interRegionDelayMs} ms between regions`);
  for (const region of names) console.log(`  ${region.padEnd(6)} ${base.regions[region].url}`);
  console.log('');
  console.log(`Open ${first}/ and click "Open all three" to chat across regions. Ctrl+C stops.`);
  const stop = async () => {
    await Promise.allSettled(apps.map((app) => app.close()));
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `config error: ${error.message}` : error);
  process.exit(1);
});
