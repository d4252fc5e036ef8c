/**
 * What the room tracker, the outbox, the consistency reports and the token refresher use of
 * the client's connection. The dialer implements it; the parts never see a socket.
 */
export interface ClientConnection {
  /** Open and welcomed (`geo.welcome`): what is sent now is read as this client's. */
  readonly isOpen: boolean;
  /** The region of the last `geo.welcome` (kept between connections). */
  readonly region: string | undefined;
  /**
   * Encodes and sends a frame if the socket is open, welcomed or not; returns whether it
   * was sent (a frame for a socket that is not open is dropped: the next connection
   * starts from the client's state, not from frames).
   */
  send(event: string, data: unknown): boolean;
  /** Sends a frame encoded already (a publish: the same bytes on every attempt). Only while {@link isOpen}. */
  sendEncoded(wire: string | Uint8Array): void;
}
