// @geo-ws/nest/microservices: the geo event log as a Nest microservice transport.
// A separate entry point so apps without @nestjs/microservices need not install it.
export { GeoEventsServer, type GeoEventsServerOptions } from './geo-events.server.js';
export { GeoEventsClient, type GeoEventsClientOptions, type GeoEmitData } from './geo-events.client.js';
export { GeoEventContext } from './geo-event.context.js';
