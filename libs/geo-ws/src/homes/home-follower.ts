import { Logger } from '@nestjs/common';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import type { GeoTransport } from '../transport/geo-transport.interface.js';
import type { GeoLogRef } from '../transport/log-ref.js';
import { RoomTraffic } from './room-traffic.js';

/** What `placement` answering `'auto'` resolves to (see `GeoWsModuleOptions.homeMoves`). */
export interface ResolvedHomeMoves {
  /** Whether a room's log follows its traffic (`placement` answers `'auto'` for it). */
  follows(room: string): boolean;
  /** Share of a window's events from one region above which the room moves there. */
  share: number;
  windowMs: number;
}

/** How often moves are summed up in the log (one line, when there were any). */
const LOG_EVERY_MS = 60_000;

/**
 * Moves rooms whose log follows its traffic to this region when most of their events come
 * from here (see {@link RoomTraffic}). Each region moves rooms only to itself, from the
 * events its members receive, so no region decides for another, and the instances of one
 * region racing for one room are settled by the transport (one move wins, the others find
 * it done). Fed by the live events of this instance's feeds.
 */
export class HomeFollower {
  private readonly logger = new Logger(HomeFollower.name);
  private readonly traffic: RoomTraffic;
  /** Rooms being looked at or moved: one at a time per room. */
  private readonly busy = new Set<string>();
  /** Moves since the last log line, and a few of them to name. */
  private moved = 0;
  private readonly examples: string[] = [];
  private readonly timers: NodeJS.Timeout[];
  private warnedNoMoves = false;

  constructor(
    private readonly transport: GeoTransport,
    private readonly region: string,
    private readonly settings: ResolvedHomeMoves,
    private readonly onMoved: (from: string) => void = () => undefined,
  ) {
    this.traffic = new RoomTraffic(settings.windowMs, settings.share);
    this.timers = [
      setInterval(() => this.traffic.sweep(), settings.windowMs).unref(),
      setInterval(() => this.logMoves(), LOG_EVERY_MS).unref(),
    ];
  }

  /** A live event of a room this instance has members in. */
  observe(log: GeoLogRef, event: GeoLoggedEnvelope): void {
    if (log.scope !== 'global' || !this.settings.follows(log.room)) return;
    this.traffic.record(log.room, event.region);
    // Only this region's events can make a room move here.
    if (event.region === this.region && !this.busy.has(log.room) && this.traffic.verdict(log.room, null).moveTo === this.region) {
      this.busy.add(log.room);
      void this.consider(log.room).finally(() => this.busy.delete(log.room));
    }
  }

  close(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /** Asks where the room lives, and moves it here if its traffic says so. */
  private async consider(room: string): Promise<void> {
    if (!this.transport.move) {
      if (!this.warnedNoMoves)
        this.logger.warn(`the ${this.transport.name} transport cannot move rooms: placement 'auto' places them only`);
      this.warnedNoMoves = true;
      return;
    }
    let from: string | null;
    try {
      from = (await this.transport.home(room)).region;
    } catch {
      return; // the broker is away: the room's traffic will ask again
    }
    if (from === null || this.traffic.verdict(room, from).moveTo !== this.region) return;
    this.traffic.moved(room); // one attempt per window, whatever comes of it
    try {
      await this.transport.move(room, this.region);
    } catch (error) {
      this.logger.warn(`moving room "${room}" to ${this.region} failed: ${error instanceof Error ? error.message : String(error)}`);
      // A move left half done is finished by the next instance that meets it: counted if it got here.
      const now = await this.transport.home(room).catch(() => undefined);
      if (now?.region !== this.region) return;
    }
    this.onMoved(from);
    this.moved++;
    if (this.examples.length < 3) this.examples.push(`"${room}" from ${from}`);
  }

  private logMoves(): void {
    if (this.moved === 0) return;
    const more = this.moved > this.examples.length ? ` and ${this.moved - this.examples.length} more` : '';
    this.logger.log(
      `${this.moved} room(s) moved to ${this.region} in the last minute, following their traffic: ${this.examples.join(', ')}${more}`,
    );
    this.moved = 0;
    this.examples.length = 0;
  }
}
