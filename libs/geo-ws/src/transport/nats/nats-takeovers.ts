import { Logger } from '@nestjs/common';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { NatsEpochs } from './nats-epochs.js';
import { LEASE_MS, type NatsHomes } from './nats-homes.js';
import type { NatsLogRef, NatsNames, NatsRoomHome } from './nats-names.js';
import { MAX_TERM } from './nats-segments.js';

type HomedLog = NatsLogRef & { home: NatsRoomHome };

/** How often each other region's home stream is asked whether it answers. */
const PROBE_EVERY_MS = 1000;
/** Default of `takeoverAfterMs`. */
export const DEFAULT_TAKEOVER_AFTER_MS = 5000;
/**
 * The least `takeoverAfterMs`: a lost home that can no longer reach the homes bucket stops
 * acking appends once its cache's freshness lapses, a lease after its last check; a
 * takeover comes well after that.
 */
export const MIN_TAKEOVER_AFTER_MS = 2 * LEASE_MS;

/**
 * Takeovers (docs/TRANSPORTS.md, "Takeover"): a room whose home region's brokers have not
 * answered for `takeoverAfterMs` is taken over by the next region that appends to it. The
 * homes bucket's compare-and-set decides between regions racing for it, and the old home
 * stops acking (its cache's freshness lapses a lease after it lost the bucket, or it reads
 * the new record), so two regions never both accept appends for one room in one epoch.
 *
 * What the lost home held beyond what reached the taker cannot be vouched for (durability
 * `home`: an event is acked once stored in its home region), so the room starts a new
 * generation, and with it a new epoch, in the taker's home stream: every member is told
 * `recovered: false` when it joins again, never a silent gap.
 */
export class NatsTakeovers {
  private readonly logger = new Logger(NatsTakeovers.name);
  private readonly startedAt = performance.now();

  constructor(
    private readonly names: NatsNames,
    private readonly homes: NatsHomes,
    private readonly epochs: NatsEpochs,
    private readonly region: string,
    private readonly regions: readonly string[],
    private readonly takeoverAfterMs: number,
  ) {}

  /**
   * Asks every other region's home stream once a second whether it answers, unless it
   * answered another request meanwhile (tails on mirrors ask as often). Returns the stop.
   */
  watch(): () => void {
    const probe = () => {
      for (const other of this.regions) {
        if (other === this.region || this.silentFor(other) < PROBE_EVERY_MS) continue;
        this.epochs.streamHead(this.names.homeStream(other)).catch(() => undefined); // unanswered: it ages
      }
    };
    const timer = setInterval(probe, PROBE_EVERY_MS);
    timer.unref();
    probe();
    return () => clearInterval(timer);
  }

  /**
   * Whether rooms homed in `region` are taken over at their next append here: it has been
   * silent for `takeoverAfterMs` while this instance saw the homes bucket all along. An
   * instance that was cut off itself (its view of the records lapsed) first waits as long
   * again, so a region coming back from its own isolation takes nothing over.
   */
  isLost(region: string): boolean {
    if (region === this.region) return false;
    const now = performance.now();
    return Math.min(this.silentFor(region, now), this.homes.freshFor(now)) >= this.takeoverAfterMs;
  }

  /** How long the region's home stream has not answered (since this instance started, if it never did). */
  silentFor(region: string, now = performance.now()): number {
    return now - (this.epochs.answeredAt(this.names.homeStream(region)) ?? this.startedAt);
  }

  /**
   * Takes the room over into this region when its home region has been silent for
   * `takeoverAfterMs`: the next term and generation, from this region's home stream's end.
   * Resolves with the room's record then (another region's, if it was first), or
   * `undefined` when its home is not lost.
   */
  async takeOver(log: HomedLog): Promise<HomedLog | undefined> {
    const { home } = log;
    if (!this.isLost(home.region)) return undefined;
    const record = await this.homes.fetch(log);
    if (!record) return undefined;
    const current = record.home;
    if (current.generation !== home.generation || current.term !== home.term) return { ...log, home: current };
    if (current.term >= MAX_TERM) throw new GeoTransportUnavailableError(`room "${log.room}" cannot change home again in this epoch`);
    await this.homes.homeStreamReady(this.region);
    const head = await this.epochs.streamHead(this.names.homeStream(this.region));
    const takenOverAt = Date.now();
    // `past` goes: the lost segments belong to the old epoch, which nobody resumes into.
    const next: NatsRoomHome = {
      region: this.region,
      term: current.term + 1,
      generation: current.generation + 1,
      incarnation: head.incarnation,
      startSeq: head.lastSeq,
      takenOverAt,
    };
    if ((await this.homes.replace(log, next, record.revision)) === undefined) {
      const winner = await this.homes.fetch(log);
      return winner ? { ...log, home: winner.home } : undefined;
    }
    this.logger.warn(
      `room "${log.room}" taken over from ${home.region}, silent for ${Math.round(this.silentFor(home.region))} ms: ` +
        `a new epoch in ${this.region} (term ${next.term}); its members are told recovered: false`,
    );
    return { ...log, home: next };
  }
}
