import type { GeoPrincipal } from '../auth/geo-principal.js';
import type { GeoWireCodec } from '../protocol/wire.js';

/**
 * One client connection, as handlers, guards and interceptors see it
 * (`context.switchToWs().getClient<GeoConnection>()` or `@GeoConnectedClient()`).
 */
export interface GeoConnection {
  /** Unique per connection (not per session). */
  readonly id: string;
  /** The authenticated identity; replaced when the client refreshes its token (`geo.auth`). */
  readonly principal: GeoPrincipal;
  /** The region of the server holding the connection. */
  readonly region: string;
  /** Rooms the connection has joined. */
  readonly rooms: ReadonlySet<string>;
  /** How the client's frames are encoded (its subprotocol): `'json'` text frames or `'msgpack'` binary frames. */
  readonly codec: GeoWireCodec;
  /** Sends one `{ event, data }` frame to this client. */
  send(event: string, data: unknown): void;
}
