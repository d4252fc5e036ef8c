/**
 * The demo: three regions (asia, eu, us) as three Nest apps in one process, by default
 * over the in-memory transport with a simulated delay between regions. `npm start`.
 * `GEO_TRANSPORT=nats` puts the three regions on NATS JetStream instead.
 */
import { GeoMemoryNetwork } from '@geo-ws/nest';
import { startRegion } from './bootstrap.js';
import { ConfigError, readRegionConfig } from './config.js';
import { transportFor } from './transports.js';

async function main(): Promise<void> {
  const base = readRegionConfig({ ...process.env, REGION: undefined, PORT: undefined });
  const network = new GeoMemoryNetwork({ delayMs: base.interRegionDelayMs });
  const names = Object.keys(base.regions);
  const apps: Awaited<ReturnType<typeof startRegion>>[] = [];
  for (const region of names) {
    const config = readRegionConfig({ GEO_QUIET: '1', ...process.env, REGION: region, PORT: undefined });
    apps.push(await startRegion(config, transportFor(config, network)));
  }
  const first = base.regions[names[0]].url;
  console.log('');
  const over =
    base.transport === 'memory'
      ? `the memory transport, ${base.interRegionDelayMs} ms between regions`
      : `${base.transport} (${base.nats.url})`;
  console.log(`geo-ws demo: ${names.length} regions in one process over ${over}`);
  for (const region of names) console.log(`  ${region.padEnd(6)} ${base.regions[region].url}`);
  console.log('');
  console.log(`Open ${first}/ and click "Open all three" to chat across regions. Ctrl+C stops.`);
  const stop = async () => {
    await Promise.allSettled(apps.map((app) => app.close()));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `config error: ${error.message}` : error);
  process.exit(1);
});
