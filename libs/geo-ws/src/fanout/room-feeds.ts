import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoTransport } from '../transport/geo-transport.interface.js';
import { logKey, type GeoLogRef } from '../transport/log-ref.js';
import type { ReplayBudget } from './replay-budget.js';
import type { JoinOutcome, JoinPosition } from '../protocol/frames.js';
import { FeedBreakLog } from './feed-break-log.js';
import { RoomFeed, type FeedHost, type FeedMember, type FeedObserver } from './room-feed.js';

/**
 * The longest a join waits for its outcome: the feed's opening (the log's head, its live
 * tail, its ephemeral subscription) and, for a resume, its first history read. Past it the
 * join gets `UNAVAILABLE` and the client joins again. A feed not open by then is dropped, and
 * a shared read still pending is no longer shared, so the next join asks the broker again.
 * A broker reply that never comes would otherwise hold joins for good. CI saw it once: a join
 * after a Redis restart, under load, got no answer for 20 s.
 */
export const JOIN_ANSWER_MS = 10_000;

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
    readonly answerTimeoutMs = JOIN_ANSWER_MS,
  ) {}

  /** Number of open feeds (one broker tail each). */
  get count(): number {
    return this.global.size + this.regional.size;
  }

  /**
   * Adds `member` to the log's feed (opened if needed). `announce` runs once the outcome is
   * known, within {@link JOIN_ANSWER_MS}. Past it, the join fails with `UNAVAILABLE`,
   * the member is taken out, and a late outcome is dropped: a join is always answered, even
   * when a broker read never returns.
   */
  async join(log: GeoLogRef, member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    let state: 'waiting' | 'announced' | 'late' = 'waiting';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (state !== 'waiting') return;
        state = 'late';
        this.leave(log, member);
        reject(this.noAnswer(log));
      }, this.answerTimeoutMs).unref();
    });
    const answer = (outcome: JoinOutcome): void => {
      if (state === 'late') {
        this.leave(log, member);
        return;
      }
      state = 'announced';
      announce(outcome);
    };
    try {
      await Promise.race([this.joinFeed(log, member, position, answer), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async joinFeed(
    log: GeoLogRef,
    member: FeedMember,
    position: JoinPosition,
    announce: (outcome: JoinOutcome) => void,
  ): Promise<void> {
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
    const opened = feed.open();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(this.noAnswer(log));
        // Whatever it opened by the time it finishes goes too: a new join opens a new feed.
        opened.then(
          () => void feed.close(),
          () => undefined,
        );
      }, this.answerTimeoutMs).unref();
    });
    feed.opening = Promise.race([opened, late]).then(
      () => {
        clearTimeout(timer);
        feed.opening = undefined;
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.forget(feed);
        throw error;
      },
    );
    return feed;
  }

  private noAnswer(log: GeoLogRef): GeoProtocolError {
    return new GeoProtocolError(
      GeoErrorCode.UNAVAILABLE,
      `room "${log.room}": no answer from the broker within ${this.answerTimeoutMs} ms; join it again`,
    );
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
