import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';

/** Error replies that are bugs (a wrong command, key type or script), not the server's state. */
const BUG_REPLY = /^(ERR|WRONGTYPE|NOSCRIPT)\b/;
/** `ERR` replies that are the server's state after all: retrying later works. */
const BUSY_REPLY = /^ERR max number of clients reached/;

/**
 * The error a failed Redis operation rejects with. Anything about reaching Redis (a
 * closed or reconnecting connection, a timeout, a failover under way: `LOADING`,
 * `MASTERDOWN`, `READONLY`, `TRYAGAIN`, `CLUSTERDOWN`, `BUSY`, a full server) is
 * `GeoTransportUnavailableError`: clients get `UNAVAILABLE` and retry. Error replies that
 * point at a bug stay themselves (`INTERNAL`, logged by the server).
 */
export function unavailable(error: unknown): Error {
  if (error instanceof GeoTransportUnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && BUG_REPLY.test(message) && !BUSY_REPLY.test(message)) return error;
  return new GeoTransportUnavailableError(`Redis: ${message}`, { cause: error });
}
