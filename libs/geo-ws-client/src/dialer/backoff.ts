import type { BackoffOptions } from '../geo-client-options.js';

/** The ceiling of attempt `attempt` (0-based): `min(maxMs, baseMs * 2^attempt)`. */
function ceiling(attempt: number, options: BackoffOptions): number {
  const { baseMs = 250, maxMs = 8000 } = options;
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}

/**
 * The delay before reconnect attempt `attempt` (0-based): uniform in
 * `[0, min(maxMs, baseMs * 2^attempt)]` ("full jitter").
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  return Math.floor(random() * ceiling(attempt, options));
}

/**
 * A delay of at least half the ceiling of `attempt`: uniform in `[c / 2, c]` with
 * `c = min(maxMs, baseMs * 2^attempt)` ("equal jitter"). For reconnects after the server
 * closed a connection for this client's conduct: never at once, however the dice fall.
 */
export function penaltyDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const top = ceiling(attempt, options);
  return Math.floor(top / 2 + random() * (top / 2));
}
