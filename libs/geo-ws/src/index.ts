// The public API of @geo-ws/nest. Everything not exported here is internal.

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
export { ConnectedClient, EventEnvelope, EventPayload, GeoUser } from './decorators/geo-params.decorators.js';
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

// The running server (revocation, presence, readiness) and the wire protocol's names
export { GeoWsServer } from './gateway/geo-ws.server.js';
export { GEO_MSGPACK_SUBPROTOCOL, GEO_SUBPROTOCOL, GeoCloseCode, GeoFrame, type GeoWireCodec } from './protocol/wire.js';
export type { GeoRegionDirectory } from './directory/geo-directory.controller.js';

// Transports, and what a transport author implements
export { memoryTransport, type MemoryTransportOptions } from './transport/memory/memory.transport.js';
export { MemoryNetwork, type MemoryNetworkOptions } from './transport/memory/memory-network.js';
export { natsTransport } from './transport/nats/nats.transport.js';
export type { NatsTransportOptions } from './transport/nats/nats-transport.options.js';
export { redisTransport } from './transport/redis/redis.transport.js';
export type { RedisEndpoint, RedisTransportOptions } from './transport/redis/redis-transport.options.js';
export {
  GeoTransport,
  type AppendResult,
  type GeoTransportContext,
  type GeoTransportFactory,
  type LogHead,
  type ReadResult,
  type Subscription,
} from './transport/geo-transport.interface.js';
export type { GeoPresenceMember, GeoSessionState, GeoStateStore, RevocationWatch } from './transport/geo-state-store.interface.js';
export { globalLog, regionalLog, type LogRef } from './transport/log-ref.js';
