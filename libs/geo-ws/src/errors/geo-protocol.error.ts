import { GeoErrorCode } from './geo-error-code.js';

/**
 * A client-visible failure: becomes one `geo.error { code, message, event_id? }` frame.
 * Throw it (or a `WsException({ code, message })`) from guards, pipes or handlers to
 * choose the code yourself.
 */
export class GeoProtocolError extends Error {
  constructor(
    readonly code: GeoErrorCode,
    message: string,
    readonly eventId?: string,
  ) {
    super(message);
    this.name = 'GeoProtocolError';
  }
}
