import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GeoHandlerExplorer } from './discovery/geo-handler.explorer.js';
import { GeoMetadataAccessor } from './discovery/geo-metadata.accessor.js';
import { GeoWsServer } from './gateway/geo-ws.server.js';
import { GeoHealthController } from './health/geo-health.controller.js';
import { GEO_WS_MODULE_OPTIONS, GEO_WS_RESOLVED_OPTIONS, GeoWsConfigurableModule } from './options/geo-ws.module-definition.js';
import type { GeoWsModuleOptions, ResolvedGeoWsOptions } from './options/geo-ws-options.interface.js';
import { resolveOptions } from './options/resolve-options.js';
import { GeoTransport } from './transport/geo-transport.interface.js';

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
  controllers: [GeoHealthController],
  providers: [
    {
      provide: GEO_WS_RESOLVED_OPTIONS,
      inject: [GEO_WS_MODULE_OPTIONS],
      useFactory: (options: GeoWsModuleOptions) => resolveOptions(options),
    },
    {
      provide: GeoTransport,
      inject: [GEO_WS_RESOLVED_OPTIONS],
      useFactory: (options: ResolvedGeoWsOptions) =>
        options.transport({
          region: options.region,
          regions: [...options.regions.keys()],
          dedupWindowMs: options.log.dedupWindowMs,
          retention: options.log.retention,
        }),
    },
    GeoMetadataAccessor,
    GeoHandlerExplorer,
    GeoWsServer,
  ],
  exports: [GeoTransport, GeoWsServer, GEO_WS_RESOLVED_OPTIONS],
})
export class GeoWsModule extends GeoWsConfigurableModule {}
