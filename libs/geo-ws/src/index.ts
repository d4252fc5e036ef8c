// The public API of @geo-ws/nest. Everything not exported here is internal.
export { GeoWsModule } from './geo-ws.module.js';
export { GEO_WS_MODULE_OPTIONS, GEO_WS_RESOLVED_OPTIONS } from './options/geo-ws.module-definition.js';
export type {
  GeoRegionEndpoint,
  GeoWsLimits,
  GeoWsLogOptions,
  GeoWsModuleOptions,
  ResolvedGeoWsOptions,
} from './options/geo-ws-options.interface.js';
export { GeoSubscribe, type GeoSubscribeOptions, type GeoSubscribeMetadata } from './decorators/geo-subscribe.decorator.js';
export { EventPayload, EventEnvelope, GeoUser, ConnectedClient } from './decorators/geo-params.decorators.js';
export type { GeoEnvelope, GeoEnvelopeDraft, GeoInboundEvent, GeoLoggedEnvelope } from './envelope/geo-envelope.interface.js';
export { GeoEnvelopeInterceptor } from './envelope/geo-envelope.interceptor.js';
export { EVENT_ID_PATTERN, ROOM_ID_PATTERN, EVENT_TYPE_PATTERN, parseInboundEvent, utcTimestamp } from './envelope/envelope.rules.js';
export { GeoErrorCode, RETRYABLE_ERROR_CODES } from './errors/geo-error-code.js';
export { GeoProtocolError } from './errors/geo-protocol.error.js';
export { GeoConfigError } from './errors/geo-config.error.js';
export type { GeoConnection } from './gateway/geo-connection.js';
export { jwtAuthenticator, roomAllowed, type GeoJwtOptions } from './auth/jwt-authenticator.js';
export type { GeoPrincipal, GeoHandshake, GeoAuthenticator } from './gateway/geo-principal.js';
export { GeoWsServer } from './gateway/geo-ws.server.js';
export { GeoFrame, GeoCloseCode, GEO_SUBSCRIBE_METADATA, GEO_SUBPROTOCOL } from './constants.js';
export type { GeoRegionDirectory } from './health/geo-health.controller.js';
export {
  GeoTransport,
  GeoTransportUnavailableError,
  type AppendResult,
  type ReadResult,
  type LogHead,
  type Subscription,
  type GeoTransportContext,
  type GeoTransportFactory,
} from './transport/geo-transport.interface.js';
export { globalLog, regionalLog, logKey, type LogRef } from './transport/log-ref.js';
export { memoryTransport, MemoryTransport, type MemoryTransportOptions } from './transport/memory/memory.transport.js';
export { MemoryNetwork, type MemoryNetworkOptions } from './transport/memory/memory-network.js';
export type { GeoStateStore, GeoSessionState, GeoPresenceMember } from './transport/geo-state-store.interface.js';
export { natsTransport, NatsTransport } from './transport/nats/nats.transport.js';
export type { NatsTransportOptions } from './transport/nats/nats-transport.options.js';
export { redisTransport, RedisTransport } from './transport/redis/redis.transport.js';
export type { RedisTransportOptions, RedisEndpoint } from './transport/redis/redis-transport.options.js';
