/** Reconnect delays: exponential with full jitter and a cap, so clients never stampede. */
export interface BackoffOptions {
  /** First ceiling, in ms. Default 250. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 8000. */
  maxMs?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): uniform in
 * `[0, min(maxMs, baseMs * 2^attempt)]` ("full jitter").
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { baseMs = 250, maxMs = 8000 } = options;
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
