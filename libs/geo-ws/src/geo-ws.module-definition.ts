// Beside the module, above everything it assembles: the builder names the HTTP controllers
// the module serves, so it may not sit under options/ (which those controllers import).
import { ConfigurableModuleBuilder } from '@nestjs/common';
import { GeoDirectoryController } from './directory/geo-directory.controller.js';
import { GeoHandshakeController } from './directory/geo-handshake.controller.js';
import { GeoHealthController } from './health/geo-health.controller.js';
import type { GeoWsModuleOptions } from './options/geo-ws-options.interface.js';

export const {
  ConfigurableModuleClass: GeoWsConfigurableModule,
  MODULE_OPTIONS_TOKEN: GEO_WS_MODULE_OPTIONS,
  OPTIONS_TYPE: GEO_WS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: GEO_WS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<GeoWsModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true, endpoints: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
    // The HTTP endpoints (`/healthz`, `/readyz`, `/geo/regions`, `/geo/presence/:room`,
    // `/geo/rooms/:room`, `/geo/handshake`); `endpoints: false` leaves them out (the client
    // SDK probes the first three, and asks the last when its WebSocket cannot read why an
    // upgrade was refused).
    controllers: extras.endpoints ? [GeoHealthController, GeoDirectoryController, GeoHandshakeController] : [],
  }))
  .build();
