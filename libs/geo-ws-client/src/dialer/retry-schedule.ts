import type { GeoClientOptions } from '../geo-client-options.js';
import { GeoClientCloseCode, GeoCloseCode } from '../protocol.js';
import { backoffDelay, penaltyDelay } from './backoff.js';

/**
 * Closes the server makes for this client's own conduct: reconnecting at once would only
 * repeat them. The client reconnects to the same region after {@link penaltyDelay}.
 */
export const PENALTY_CODES: ReadonlySet<number> = new Set([
  GeoCloseCode.POLICY_VIOLATION,
  GeoCloseCode.MESSAGE_TOO_BIG,
  GeoCloseCode.SLOW_CONSUMER,
  GeoCloseCode.TOO_MANY_CONNECTIONS,
]);
/**
 * Failed attempts on a region before the next one: the lost region is tried once more
 * (a blip), then left. Measured with the lab's region-down (1,000 clients of a killed
 * region): 3 cost the clients 517 ms p50 of backoff before the first attempt elsewhere.
 */
export const DEFAULT_FAILOVER_AFTER = 2;
/** A connection that stayed open this long ends a run of {@link PENALTY_CODES} closes. */
export const SETTLED_MS = 60_000;

/** The regions as the schedule moves through them. */
export interface FailoverTarget {
  /** How many regions there are to fail over to, the current one included. */
  readonly count: number;
  /** Move to the next region of the ranking. */
  failOver(): void;
}

/**
 * When, and where, the dialer tries again after a connection ended with `code` (the
 * server's, the client's own, or 1006), docs/CLIENT.md, "Close codes":
 * - the client moves ({@link GeoClientCloseCode.MOVING}) or the region restarts
 *   ({@link GeoCloseCode.SERVICE_RESTART}, then to the next region): at once;
 * - the server closed it for this client's conduct ({@link PENALTY_CODES}: too many
 *   refused frames, a frame too big, a slow consumer, too many connections of this user,
 *   also as an upgrade refused with HTTP 429): to the same region after a
 *   {@link penaltyDelay} that grows with each such close in a row (a `geo.welcome` does not
 *   end the run; a connection that stays open {@link SETTLED_MS} does), so a client that
 *   keeps causing them never loops hot;
 * - the connection went silent ({@link GeoClientCloseCode.SILENT}: a black-holed region):
 *   to the next region after a full-jitter backoff delay, at once rather than after
 *   `failoverAfter` tries: a retry there would only wait out its handshake deadline too
 *   (the lab's `region-down --mode stall`: 10 s more per client);
 * - anything else (lost, token expired, idle, no welcome): after a full-jitter
 *   backoff delay that grows with the failed attempts in a row; after `failoverAfter` of
 *   them, to the next region at once (the retries before it spread the clients already:
 *   the lab's region-down measured 250 ms p50 of backoff with a second delay).
 */
export class RetrySchedule {
  /** Attempts since the last `geo.welcome` or move: the backoff exponent, and what `reconnect` reports. */
  private attempts = 0;
  /** Failed attempts in a row on the current region. */
  private failuresHere = 0;
  /** Closes in a row for this client's conduct ({@link PENALTY_CODES}). */
  private penalties = 0;

  constructor(private readonly options: Pick<GeoClientOptions, 'backoff' | 'failoverAfter'>) {}

  /** The attempt the `reconnect` event reports. */
  get attempt(): number {
    return this.attempts;
  }

  /** `geo.welcome`: the region works. A run of penalty closes goes on (see {@link SETTLED_MS}). */
  welcomed(): void {
    this.failuresHere = 0;
    this.attempts = 0;
  }

  /** A move to another region (a failover, `moveTo()`): it starts with a clean count. */
  moved(): void {
    this.failuresHere = 0;
    this.attempts = 0;
  }

  /** The region drains (`geo.reconnect`): closing it is no failure of the region. */
  draining(): void {
    this.failuresHere = 0;
  }

  /**
   * A connection that was open (welcomed) for `openFor` ms ended with `code`: returns the
   * delay before the next attempt, having moved `regions` to the next region if that is
   * where the next attempt goes.
   */
  afterClose(code: number, openFor: number, regions: FailoverTarget): number {
    if (openFor >= SETTLED_MS) this.penalties = 0;
    if (code === GeoClientCloseCode.MOVING) return 0;
    if (code === GeoCloseCode.SERVICE_RESTART) {
      if (regions.count > 1) this.failOver(regions);
      return 0;
    }
    if (PENALTY_CODES.has(code)) {
      const delayMs = penaltyDelay(++this.penalties, this.options.backoff);
      this.attempts++;
      return delayMs;
    }
    const failoverAfter = code === GeoClientCloseCode.SILENT ? 1 : (this.options.failoverAfter ?? DEFAULT_FAILOVER_AFTER);
    if (++this.failuresHere >= failoverAfter && regions.count > 1) {
      const triedAgainHere = this.failuresHere > 1;
      this.failOver(regions);
      if (triedAgainHere) {
        // The lost region's clients spread over a backoff window when they tried it again;
        // a second window before the next region would only add to every failover.
        this.attempts++;
        return 0;
      }
    }
    return backoffDelay(this.attempts++, this.options.backoff);
  }

  private failOver(regions: FailoverTarget): void {
    regions.failOver();
    this.moved();
  }
}
