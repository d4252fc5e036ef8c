/**
 * A refused or abandoned publish, join or connection. `code` is the server's stable code
 * (see docs/PROTOCOL.md), or one of the client's own: `LEFT`, `CLOSED` (the app gave up on
 * it), `INVALID_OPTIONS` (the options cannot work), `TIMEOUT` (no region accepted a
 * connection within `connectTimeoutMs`). Publishes the client refuses before sending carry
 * the code the server would have answered (`MALFORMED_FRAME`, `PAYLOAD_TOO_LARGE`,
 * `INVALID_ENVELOPE`); a connection a region refused, the code of its refusal
 * (`UNAUTHORIZED`, `FORBIDDEN`).
 */
export class GeoClientError extends Error {
  constructor(
    /** The code to branch on; `message` is for people. */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GeoClientError';
  }
}
