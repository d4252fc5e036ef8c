/**
 * The room log cannot be reached right now: the broker is down or unreachable, a
 * connection is being re-established, a JetStream leader election or Redis failover is
 * under way, or a live tail had to stop (its log was reset, retention removed events it
 * had not delivered yet). Retryable: clients get `UNAVAILABLE` and resend with the same
 * `event_id`, or join the room again.
 */
export class GeoTransportUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GeoTransportUnavailableError';
  }
}
