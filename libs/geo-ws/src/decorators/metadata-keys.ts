// Metadata keys and the context type geo-ws handlers run under.
/** Metadata key of `@GeoSubscribe` (method level). */
export const GEO_SUBSCRIBE_METADATA = 'geo-ws:subscribe';
/** Metadata key of the geo-ws parameter decorators (a string: Nest builds cache keys from it). */
export const GEO_PARAM_ARGS_METADATA = '__geoWsRouteArguments__';
/** Nest's context type for WebSocket handlers: guards branch on `context.getType() === 'ws'`. */
export const GEO_CONTEXT_TYPE = 'ws';
