/**
 * A refused or abandoned publish or join. `code` is the server's stable code (see
 * docs/PROTOCOL.md), or one of the client's own: `LEFT`, `CLOSED` (the app gave up on it).
 * Publishes the client refuses before sending carry the code the server would have
 * answered (`MALFORMED_FRAME`, `PAYLOAD_TOO_LARGE`, `INVALID_ENVELOPE`).
 */
export class GeoClientError extends Error {
  constructor(
    /** The code to branch on; `message` is for people. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'GeoClientError';
  }
}
