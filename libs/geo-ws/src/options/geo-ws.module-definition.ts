import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { GeoWsModuleOptions } from './geo-ws-options.interface.js';

export const {
  ConfigurableModuleClass: GeoWsConfigurableModule,
  MODULE_OPTIONS_TOKEN: GEO_WS_MODULE_OPTIONS,
  OPTIONS_TYPE: GEO_WS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: GEO_WS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<GeoWsModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** Injection token of the validated options with defaults applied. */
export const GEO_WS_RESOLVED_OPTIONS = Symbol('GEO_WS_RESOLVED_OPTIONS');
