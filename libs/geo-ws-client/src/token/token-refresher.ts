import type { ClientConnection } from '../client-connection.js';
import type { Emit } from '../geo-client-events.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { GeoFrame } from '../protocol.js';

/** The token is refreshed at this share of its remaining lifetime, but not sooner than {@link MIN_REFRESH_WAIT_MS}. */
export const REFRESH_AT = 0.8;
export const MIN_REFRESH_WAIT_MS = 1000;
/** The longest delay `setTimeout` takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps the connection's token fresh in-band. With a `token` function, a fresh token is
 * sent as `geo.auth` at 80% of the lifetime the server announced (`expires_at` of
 * `geo.welcome`, then of each `geo.authed`), so the connection is never closed for expiry.
 * A fixed token cannot be refreshed: nothing is scheduled.
 */
export class TokenRefresher {
  /** The next refresh; one at a time. */
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** Read at each schedule, as the client always has. */
    private readonly options: Pick<GeoClientOptions, 'token'>,
    private readonly connection: Pick<ClientConnection, 'send'>,
    private readonly emit: Emit,
    /** Aborted by `close()`: a refresh that fails after it is not reported. */
    private readonly lifetime: AbortSignal,
  ) {}

  /** Refreshes at 80% of the lifetime left until `expiresAt` (an ISO date; none: no refresh). */
  schedule(expiresAt: string | null | undefined): void {
    clearTimeout(this.timer);
    if (!expiresAt || typeof this.options.token !== 'function') return;
    const tokenSource = this.options.token;
    const wait = Math.max(MIN_REFRESH_WAIT_MS, (Date.parse(expiresAt) - Date.now()) * REFRESH_AT);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.refresh(tokenSource);
      },
      Math.min(wait, MAX_TIMER_MS),
    );
  }

  /** No more refreshes (`close()`). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Sends a fresh token in-band (`geo.auth`); a failing `token` function is reported as `error`. */
  private async refresh(tokenSource: () => string | Promise<string>): Promise<void> {
    try {
      const token = await tokenSource();
      this.connection.send(GeoFrame.AUTH, { token });
    } catch (error) {
      if (!this.lifetime.aborted)
        this.emit('error', { code: 'UNAUTHORIZED', message: `token refresh failed: ${(error as Error).message}` });
    }
  }
}
