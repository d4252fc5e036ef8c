// The names @geo-ws/nest had before every exported type and decorator took the `Geo`
// prefix. Each is the renamed export itself under its old name, so code written against
// them keeps compiling through 0.1.x; they go away in 0.2.0, with this file and its
// section of index.ts.
import { GeoConnectedClient, GeoEventEnvelope, GeoEventPayload } from './decorators/geo-params.decorators.js';
import type { GeoRevocationWatch } from './transport/geo-state-store.interface.js';
import type { GeoAppendResult, GeoLogHead, GeoReadResult, GeoSubscription } from './transport/geo-transport.interface.js';
import type { GeoLogRef } from './transport/log-ref.js';
import { GeoMemoryNetwork, type GeoMemoryNetworkOptions } from './transport/memory/memory-network.js';
import type { GeoMemoryTransportOptions } from './transport/memory/memory.transport.js';
import type { GeoNatsTransportOptions } from './transport/nats/nats-transport.options.js';
import type { GeoRedisEndpoint, GeoRedisTransportOptions } from './transport/redis/redis-transport.options.js';

/** @deprecated Renamed {@link GeoEventPayload}; `EventPayload` goes away in 0.2.0. */
export const EventPayload = GeoEventPayload;
/** @deprecated Renamed {@link GeoEventEnvelope}; `EventEnvelope` goes away in 0.2.0. */
export const EventEnvelope = GeoEventEnvelope;
/** @deprecated Renamed {@link GeoConnectedClient}; `ConnectedClient` goes away in 0.2.0. */
export const ConnectedClient = GeoConnectedClient;

/** @deprecated Renamed {@link GeoMemoryNetwork}; `MemoryNetwork` goes away in 0.2.0. */
export const MemoryNetwork = GeoMemoryNetwork;
/** @deprecated Renamed {@link GeoMemoryNetwork}; `MemoryNetwork` goes away in 0.2.0. */
export type MemoryNetwork = GeoMemoryNetwork;
/** @deprecated Renamed {@link GeoMemoryNetworkOptions}; `MemoryNetworkOptions` goes away in 0.2.0. */
export type MemoryNetworkOptions = GeoMemoryNetworkOptions;
/** @deprecated Renamed {@link GeoMemoryTransportOptions}; `MemoryTransportOptions` goes away in 0.2.0. */
export type MemoryTransportOptions = GeoMemoryTransportOptions;
/** @deprecated Renamed {@link GeoNatsTransportOptions}; `NatsTransportOptions` goes away in 0.2.0. */
export type NatsTransportOptions = GeoNatsTransportOptions;
/** @deprecated Renamed {@link GeoRedisTransportOptions}; `RedisTransportOptions` goes away in 0.2.0. */
export type RedisTransportOptions = GeoRedisTransportOptions;
/** @deprecated Renamed {@link GeoRedisEndpoint}; `RedisEndpoint` goes away in 0.2.0. */
export type RedisEndpoint = GeoRedisEndpoint;

/** @deprecated Renamed {@link GeoSubscription}; `Subscription` goes away in 0.2.0. */
export type Subscription = GeoSubscription;
/** @deprecated Renamed {@link GeoReadResult}; `ReadResult` goes away in 0.2.0. */
export type ReadResult = GeoReadResult;
/** @deprecated Renamed {@link GeoLogHead}; `LogHead` goes away in 0.2.0. */
export type LogHead = GeoLogHead;
/** @deprecated Renamed {@link GeoAppendResult}; `AppendResult` goes away in 0.2.0. */
export type AppendResult = GeoAppendResult;
/** @deprecated Renamed {@link GeoRevocationWatch}; `RevocationWatch` goes away in 0.2.0. */
export type RevocationWatch = GeoRevocationWatch;
/** @deprecated Renamed {@link GeoLogRef}; `LogRef` goes away in 0.2.0. */
export type LogRef = GeoLogRef;
