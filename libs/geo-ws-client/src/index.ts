// @geo-ws/client: the public API.
export { GeoClient, GeoClientError, newEventId, type GeoClientOptions, type GeoClientEvents, type ConnectionState, type RoomHandler } from './geo-client.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { rankRegions, httpProbe, type RttProbe, type RankOptions, type RankedRegion } from './nearest-region.js';
export type { GeoEnvelope, GeoRegion, JoinedFrame, AckFrame, ErrorFrame, WebSocketLike, WebSocketConstructor } from './protocol.js';
export { GeoCloseCode, GeoClientCloseCode } from './protocol.js';
