import { Logger } from '@nestjs/common';

/** How often each refusal code may write a line. */
const REFUSAL_LOG_EVERY_MS = 60_000;

/**
 * Refusals (`geo.error` frames) in the logs without letting a client flood them: the
 * first refusal of a code writes one warning, later ones are counted and written as one
 * line with their count at most once a minute. The code is all it says (never a token,
 * a payload or a message a client chose). Codes are a bounded set, so is this map.
 */
export class RefusalLog {
  private readonly logger = new Logger('GeoRefusals');
  private readonly byCode = new Map<string, { loggedAt: number; unlogged: number }>();

  constructor(
    private readonly region: string,
    /** What is refused: `frame` (a `geo.error`) or `upgrade` (an HTTP refusal of a WebSocket). */
    private readonly what: 'frame' | 'upgrade' = 'frame',
  ) {}

  hit(code: string): void {
    const now = Date.now();
    let entry = this.byCode.get(code);
    if (!entry) this.byCode.set(code, (entry = { loggedAt: -Infinity, unlogged: 0 }));
    entry.unlogged++;
    if (now - entry.loggedAt < REFUSAL_LOG_EVERY_MS) return;
    const first = entry.loggedAt === -Infinity;
    this.logger.warn(
      first
        ? `refused a${this.what === 'upgrade' ? 'n' : ''} ${this.what} with ${code} in region ${this.region} (more are counted, one line a minute)`
        : `refused ${entry.unlogged} ${this.what}(s) with ${code} in region ${this.region} in the last ${Math.round((now - entry.loggedAt) / 1000)} s`,
    );
    entry.loggedAt = now;
    entry.unlogged = 0;
  }
}
