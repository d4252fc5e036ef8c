import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { NatsModules } from './load-nats.js';

/** Whether `error` is a JetStream API refusal with this error code. */
export function isApiError(nats: NatsModules, error: unknown, code: number): boolean {
  return error instanceof nats.jetstream.JetStreamApiError && error.code === code;
}

/** Broker API refusals stay errors; anything about reaching the broker is retryable. */
export function unavailable(nats: NatsModules | undefined, error: unknown): Error {
  if (error instanceof GeoTransportUnavailableError) return error;
  if (nats && error instanceof nats.jetstream.JetStreamApiError) return error;
  return new GeoTransportUnavailableError(`NATS: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
