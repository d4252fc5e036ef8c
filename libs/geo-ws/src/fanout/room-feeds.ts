import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import type { GeoTransport } from '../transport/geo-transport.interface.js';
import { logKey, type GeoLogRef } from '../transport/log-ref.js';
import type { ReplayBudget } from './replay-budget.js';
import type { JoinOutcome, JoinPosition } from '../protocol/frames.js';
import { FeedBreakLog } from './feed-break-log.js';
import { RoomFeed, type FeedHost, type FeedMember, type FeedObserver } from './room-feed.js';

/**
 * This node's feeds: one per log that has at least one local member.
 *
 * Memory per feed is one {@link RoomFeed} and its map entry: global logs are keyed by the
 * room's own name (the string the feed's log already holds, not a key built per feed), and
 * the feed itself carries its opening state (no entry object, no promise kept once open).
 */
export class RoomFeeds implements FeedHost {
  /** Feeds of global logs, by room… */
  private readonly global = new Map<string, RoomFeed>();
  /** …and of regional logs, by {@link logKey}. */
  private readonly regional = new Map<string, RoomFeed>();
  private readonly breaks = new FeedBreakLog();
  /** Feeds holding recent events, swept every `recentMs` by one timer for the node. */
  private readonly holders = new Set<RoomFeed>();
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly transport: GeoTransport,
    readonly budget: ReplayBudget,
    /** Metrics, when they are on. */
    readonly observer?: FeedObserver,
    /** Live events, for rooms that follow their traffic. */
    readonly traffic?: (log: GeoLogRef, event: GeoLoggedEnvelope) => void,
  ) {}

  /** Number of open feeds (one broker tail each). */
  get count(): number {
    return this.global.size + this.regional.size;
  }

  async join(log: GeoLogRef, member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    const feed = this.find(log) ?? this.open(log);
    if (feed.opening) {
      feed.waiting++;
      try {
        await feed.opening;
      } finally {
        feed.waiting--;
      }
    }
    try {
      await feed.join(member, position, announce);
    } finally {
      this.closeIfUnused(feed);
    }
  }

  /**
   * Where a member is in a log now: the last `seq` its feed handed to it, or `undefined`
   * if it is not live there (not a member, or still replaying). Read when a session is
   * saved, never on delivery.
   */
  positionOf(log: GeoLogRef, member: FeedMember): number | undefined {
    return this.find(log)?.cursorOf(member);
  }

  leave(log: GeoLogRef, member: FeedMember): void {
    const feed = this.find(log);
    if (!feed) return;
    if (feed.opening) {
      // Not a member yet: a join waiting for the feed adds it first, then this takes it out.
      void feed.opening.then(
        () => this.leave(log, member),
        () => undefined,
      );
      return;
    }
    feed.leave(member);
    // Checked after this turn: a member that leaves to join again (a re-join) is back by
    // then, and keeps the feed instead of opening a new tail.
    queueMicrotask(() => this.closeIfUnused(feed));
  }

  async closeAll(): Promise<void> {
    const feeds = [...this.global.values(), ...this.regional.values()];
    this.global.clear();
    this.regional.clear();
    this.holders.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.breaks.close();
    await Promise.allSettled(
      feeds.map(async (feed) => {
        await feed.opening;
        await feed.close();
      }),
    );
  }

  /** @internal A feed's live tail stopped: it is forgotten (its members join again). */
  broken(feed: RoomFeed, reason: string): void {
    this.breaks.hit(feed.log.room, reason);
    this.observer?.tailStopped();
    this.forget(feed);
  }

  /** @internal A feed holds recent events: they are swept from now on. */
  holding(feed: RoomFeed): void {
    this.holders.add(feed);
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), this.budget.limits.recentMs);
    this.sweeper.unref();
  }

  /** Events held for two sweeps go; a feed left with none is no longer visited. */
  private sweep(): void {
    for (const feed of this.holders) if (feed.sweepRecent()) this.holders.delete(feed);
    if (this.holders.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private open(log: GeoLogRef): RoomFeed {
    const feed = new RoomFeed(this, log);
    if (log.scope === 'global') this.global.set(log.room, feed);
    else this.regional.set(logKey(log), feed);
    feed.opening = feed.open().then(
      () => {
        feed.opening = undefined;
      },
      (error: unknown) => {
        this.forget(feed);
        throw error;
      },
    );
    return feed;
  }

  private find(log: GeoLogRef): RoomFeed | undefined {
    return log.scope === 'global' ? this.global.get(log.room) : this.regional.get(logKey(log));
  }

  private closeIfUnused(feed: RoomFeed): void {
    if (feed.size > 0 || feed.opening || feed.waiting > 0) return;
    if (this.forget(feed)) void feed.close();
  }

  /** Drops `feed` from the maps if it is still the one there; true if it was. */
  private forget(feed: RoomFeed): boolean {
    this.holders.delete(feed);
    if (this.find(feed.log) !== feed) return false;
    if (feed.log.scope === 'global') this.global.delete(feed.log.room);
    else this.regional.delete(logKey(feed.log));
    return true;
  }
}
