import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GeoHandlerExplorer } from './discovery/geo-handler.explorer.js';
import { GeoMetadataAccessor } from './discovery/geo-metadata.accessor.js';
import { GeoWsServer } from './gateway/geo-ws.server.js';
import { GeoMetrics } from './metrics/geo-metrics.js';
import { GeoMetricsEndpoint } from './metrics/geo-metrics.endpoint.js';
import { GEO_WS_MODULE_OPTIONS, GeoWsConfigurableModule } from './geo-ws.module-definition.js';
import { GEO_WS_RESOLVED_OPTIONS } from './options/geo-ws.tokens.js';
import type { GeoWsModuleOptions, ResolvedGeoWsOptions } from './options/geo-ws-options.interface.js';
import { resolveOptions } from './options/resolve-options.js';
import { GeoTransport } from './transport/geo-transport.interface.js';
import { GeoConfigError } from './errors/geo-config.error.js';

/**
 * Makes a Nest app one region of a geo-distributed WebSocket system. Import it once in
 * the root module, in every region's app, with that region's name.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     GeoWsModule.forRoot({
 *       region: process.env.REGION!,
 *       regions: { asia: 'https://asia.example.com', eu: 'https://eu.example.com', us: 'https://us.example.com' },
 *       transport: memoryTransport(),
 *     }),
 *   ],
 *   providers: [ChatGateway],
 * })
 * export class AppModule {}
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: GEO_WS_RESOLVED_OPTIONS,
      inject: [GEO_WS_MODULE_OPTIONS],
      useFactory: (options: GeoWsModuleOptions) => resolveOptions(options),
    },
    {
      // The module owns the transport's connection: connected here, before anything uses
      // it, and closed by the module itself after every provider has shut down.
      provide: GeoTransport,
      inject: [GEO_WS_RESOLVED_OPTIONS],
      useFactory: async (options: ResolvedGeoWsOptions) => {
        const transport = await options.transport({
          region: options.region,
          regions: [...options.regions.keys()],
          dedupWindowMs: options.log.dedupWindowMs,
          retention: options.log.retention,
          placeRoom: options.placeRoom,
          placeOnJoin: options.placeOnJoin,
        });
        if (options.placeRoom && transport.placement === 'fixed') {
          await transport.close().catch(() => undefined);
          throw new GeoConfigError(
            `GeoWsModule: placement needs a transport that homes rooms one by one (memoryTransport, or natsTransport({ roomHomes: true })); the ${transport.name} transport keeps every global log in one place. Remove placement, or change the transport.`,
          );
        }
        try {
          await transport.connect();
        } catch (error) {
          await transport.close().catch(() => undefined);
          throw new Error(`GeoWsModule: the ${transport.name} transport could not connect: ${(error as Error).message}`, { cause: error });
        }
        return transport;
      },
    },
    {
      // prom-client is loaded only when metrics are on; `null` otherwise.
      provide: GeoMetrics,
      inject: [GEO_WS_RESOLVED_OPTIONS],
      useFactory: (options: ResolvedGeoWsOptions) =>
        options.metrics ? GeoMetrics.create(options.metrics, options.region, options.regions.keys()) : null,
    },
    GeoMetricsEndpoint,
    GeoMetadataAccessor,
    GeoHandlerExplorer,
    GeoWsServer,
  ],
  exports: [GeoTransport, GeoWsServer, GeoMetrics, GEO_WS_RESOLVED_OPTIONS],
})
export class GeoWsModule extends GeoWsConfigurableModule implements OnApplicationShutdown {
  constructor(@Inject(GeoTransport) private readonly transport: GeoTransport) {
    super();
  }

  /** Called after every provider of the module (the server included) has shut down. */
  async onApplicationShutdown(): Promise<void> {
    await this.transport.close();
  }
}
