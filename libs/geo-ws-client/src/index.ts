// @geo-ws/client: the public API. Everything else in src/ is internal.
export {
  GeoClient,
  newEventId,
  type GeoClientOptions,
  type GeoClientEvents,
  type ConnectionState,
  type RoomHandler,
  type EventDelivery,
} from './geo-client.js';
export type { BackoffOptions, PositionStorage, RttProbe } from './geo-client-options.js';
export type { Anomaly, AnomalyKind } from './geo-client-events.js';
export type { ConsistencyCounts } from './rooms/consistency.js';
export { GeoClientError } from './errors.js';
export { jsonCodec, type GeoCodec } from './codec.js';
export { httpProbe, type RankedRegion } from './dialer/nearest-region.js';
export { GeoCloseCode, GeoClientCloseCode } from './protocol.js';
export type {
  GeoEnvelope,
  GeoRegion,
  GeoRegionOption,
  JoinedFrame,
  LeftFrame,
  AckFrame,
  ErrorFrame,
  WebSocketLike,
  WebSocketConstructor,
} from './protocol.js';
