// The public API of @geo-ws/nest. Everything not exported here is internal. Every exported
// type, class and decorator is named Geo*; factories (memoryTransport) and constants are not.

// The module and its options
export { GeoWsModule } from './geo-ws.module.js';
export type {
  GeoRegionEndpoint,
  GeoWsCompressionOptions,
  GeoWsLimits,
  GeoWsLogOptions,
  GeoWsModuleOptions,
  GeoWsReplayLimits,
} from './options/geo-ws-options.interface.js';

// Metrics (Prometheus, with the optional peer prom-client)
export { GeoMetrics } from './metrics/geo-metrics.js';
export type { GeoClientReport } from './metrics/client-report.js';
export type { GeoMetricsOptions, GeoMetricsRegistry } from './metrics/geo-metrics.options.js';

// Handlers: the decorator, its options and the parameter decorators
export { GeoSubscribe } from './decorators/geo-subscribe.decorator.js';
export type { GeoSubscribeMetadata, GeoSubscribeOptions } from './decorators/geo-subscribe.options.js';
export { GeoConnectedClient, GeoEventEnvelope, GeoEventPayload, GeoUser } from './decorators/geo-params.decorators.js';
export type { GeoConnection } from './decorators/geo-connection.js';

// The envelope and its rules
export type { GeoEnvelope, GeoEnvelopeDraft, GeoInboundEvent, GeoLoggedEnvelope } from './envelope/geo-envelope.interface.js';
export { EVENT_ID_PATTERN, EVENT_TYPE_PATTERN, ROOM_ID_PATTERN } from './envelope/envelope.rules.js';

// Errors
export { GeoErrorCode, RETRYABLE_ERROR_CODES } from './errors/geo-error-code.js';
export { GeoProtocolError } from './errors/geo-protocol.error.js';
export { GeoConfigError } from './errors/geo-config.error.js';
export { GeoTransportUnavailableError } from './errors/geo-transport-unavailable.error.js';

// Identity
export { jwtAuthenticator, type GeoJwtOptions } from './auth/jwt-authenticator.js';
export type { GeoAuthenticator, GeoHandshake, GeoPrincipal } from './auth/geo-principal.js';

// The running server (revocation, readiness) and the wire protocol's names
export { GeoWsServer } from './gateway/geo-ws.server.js';
export { GEO_MSGPACK_SUBPROTOCOL, GEO_SUBPROTOCOL, GeoCloseCode, GeoFrame, type GeoWireCodec } from './protocol/wire.js';
export type { GeoRegionDirectory, GeoRoomHomeAnswer } from './directory/geo-directory.controller.js';

// Transports, and what a transport author implements
export { memoryTransport, type GeoMemoryTransportOptions } from './transport/memory/memory.transport.js';
export { GeoMemoryNetwork, type GeoMemoryNetworkOptions } from './transport/memory/memory-network.js';
export { natsTransport } from './transport/nats/nats.transport.js';
export type { GeoNatsTransportOptions } from './transport/nats/nats-transport.options.js';
export { redisTransport } from './transport/redis/redis.transport.js';
export type { GeoRedisEndpoint, GeoRedisTransportOptions } from './transport/redis/redis-transport.options.js';
export {
  GeoTransport,
  type GeoAppendResult,
  type GeoLogHead,
  type GeoReadResult,
  type GeoSubscription,
  type GeoTransportContext,
  type GeoTransportFactory,
} from './transport/geo-transport.interface.js';
export type { GeoPresenceMember, GeoRevocationWatch, GeoSessionState, GeoStateStore } from './transport/geo-state-store.interface.js';
export { globalLog, regionalLog, type GeoLogRef } from './transport/log-ref.js';
export type { GeoPlacement, GeoRoomHome } from './transport/room-home.js';

// Deprecated: the names before the Geo prefix, removed in 0.2.0
/* eslint-disable @typescript-eslint/no-deprecated -- handing the old names on is what they are kept for */
export {
  ConnectedClient,
  EventEnvelope,
  EventPayload,
  MemoryNetwork,
  type AppendResult,
  type LogHead,
  type LogRef,
  type MemoryNetworkOptions,
  type MemoryTransportOptions,
  type NatsTransportOptions,
  type ReadResult,
  type RedisEndpoint,
  type RedisTransportOptions,
  type RevocationWatch,
  type Subscription,
} from './deprecated.js';
/* eslint-enable @typescript-eslint/no-deprecated */
