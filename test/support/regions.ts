import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  GeoTransport,
  GeoWsModule,
  GeoWsServer,
  GeoMemoryNetwork,
  memoryTransport,
  type GeoTransportFactory,
  type GeoWsModuleOptions,
} from '@geo-ws/nest';
import { FixtureGateway } from '../fixtures/fixture.gateway.js';
import { freePort } from '../../apps/lab/src/topology/free-port.js';

export interface RegionApp {
  name: string;
  app: INestApplication;
  url: string;
  wsUrl: string;
  server: GeoWsServer;
  transport: GeoTransport;
  gateway: FixtureGateway;
}

export interface Deployment {
  regions: RegionApp[];
  network: GeoMemoryNetwork;
  region(name: string): RegionApp;
  close(): Promise<void>;
}

/** Demo-style identities from `?name=` (a revocable token with `?token_id=`); `nobody` is refused at the handshake. */
const nameAuthenticator: GeoWsModuleOptions['authenticate'] = ({ url }) => {
  const name = url.searchParams.get('name');
  if (name === 'nobody') return null;
  const tokenId = url.searchParams.get('token_id');
  return { id: name ?? 'anonymous', ...(tokenId ? { tokenId } : {}) };
};

/**
 * Starts one fixture app per region, in this process, on free ports, sharing one memory
 * network (optionally with inter-region delay), as the demo does.
 */
export async function deployRegions(
  names: string[] = ['asia', 'eu', 'us'],
  options: {
    delayMs?: number;
    geo?: Partial<GeoWsModuleOptions>;
    /** Each region's transport; default the shared memory network. */
    transport?: (region: string, network: GeoMemoryNetwork) => GeoTransportFactory;
  } = {},
): Promise<Deployment> {
  const network = new GeoMemoryNetwork({ delayMs: options.delayMs ?? 0 });
  const ports = await Promise.all(names.map(() => freePort()));
  const directory = Object.fromEntries(names.map((name, i) => [name, `http://127.0.0.1:${ports[i]}`]));
  const regions: RegionApp[] = [];
  try {
    await startAll();
  } catch (error) {
    // A region that failed to boot must not leave the others running (open sockets keep Jest alive).
    await Promise.allSettled(regions.map((region) => region.app.close()));
    throw error;
  }
  return {
    regions,
    network,
    region: (name) => regions.find((region) => region.name === name)!,
    close: async () => {
      await Promise.allSettled(regions.map((region) => region.app.close()));
    },
  };

  async function startAll(): Promise<void> {
    for (const [i, name] of names.entries()) {
      @Module({
        imports: [
          GeoWsModule.forRoot({
            region: name,
            regions: directory,
            transport: options.transport ? options.transport(name, network) : memoryTransport({ network }),
            authenticate: nameAuthenticator,
            drainGraceMs: 0,
            ...options.geo,
            // Every region of a test shares Jest's event loop, which a busy CI machine can
            // stall for a second: load shedding only where a test asks for it.
            limits: { maxEventLoopDelayMs: 0, ...options.geo?.limits },
          }),
        ],
        providers: [FixtureGateway],
      })
      class FixtureAppModule {}
      // Silent; E2E_LOGS=1 shows the regions' warnings and errors when a run needs explaining.
      const app = await NestFactory.create(FixtureAppModule, { logger: process.env.E2E_LOGS ? ['error', 'warn'] : false });
      try {
        await app.listen(ports[i], '127.0.0.1');
      } catch (error) {
        await app.close();
        throw error;
      }
      regions.push({
        name,
        app,
        url: directory[name],
        wsUrl: `ws://127.0.0.1:${ports[i]}/ws`,
        server: app.get(GeoWsServer),
        transport: app.get(GeoTransport),
        gateway: app.get(FixtureGateway),
      });
    }
  }
}
