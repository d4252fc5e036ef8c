import type { GeoTransport } from '../transport/geo-transport.interface.js';
import { logKey, type LogRef } from '../transport/log-ref.js';
import type { ReplayBudget } from './replay-budget.js';
import type { JoinOutcome, JoinPosition } from '../protocol/frames.js';
import { FeedBreakLog } from './feed-break-log.js';
import { RoomFeed, type FeedMember, type FeedObserver } from './room-feed.js';

interface FeedEntry {
  feed: Promise<RoomFeed>;
  /** The feed once it is open: read synchronously by {@link RoomFeeds.positionOf}. */
  open?: RoomFeed;
  /** Joins waiting for the feed to open: it must not be closed under them. */
  opening: number;
}

/** This node's feeds: one per log that has at least one local member. */
export class RoomFeeds {
  private readonly feeds = new Map<string, FeedEntry>();
  private readonly breaks = new FeedBreakLog();

  constructor(
    private readonly transport: GeoTransport,
    private readonly budget: ReplayBudget,
    /** Metrics, when they are on. */
    private readonly observer?: FeedObserver,
  ) {}

  /** Number of open feeds (one broker tail each). */
  get count(): number {
    return this.feeds.size;
  }

  async join(log: LogRef, member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    const key = logKey(log);
    let entry = this.feeds.get(key);
    if (!entry) {
      const opened = RoomFeed.open(
        this.transport,
        log,
        this.budget,
        (reason) => {
          this.breaks.hit(log.room, reason);
          this.observer?.tailStopped();
          this.forget(key, opened);
        },
        this.observer,
      );
      const created: FeedEntry = { feed: opened, opening: 0 };
      entry = created;
      this.feeds.set(key, entry);
      opened.then(
        (feed) => (created.open = feed),
        () => this.forget(key, opened),
      );
    }
    entry.opening++;
    let feed: RoomFeed;
    try {
      feed = await entry.feed;
    } finally {
      entry.opening--;
    }
    try {
      await feed.join(member, position, announce);
    } finally {
      this.closeIfUnused(key);
    }
  }

  /**
   * Where a member is in a log now: the last `seq` its feed handed to it, or `undefined`
   * if it is not live there (not a member, or still replaying). Read when a session is
   * saved, never on delivery.
   */
  positionOf(log: LogRef, member: FeedMember): number | undefined {
    return this.feeds.get(logKey(log))?.open?.cursorOf(member);
  }

  leave(log: LogRef, member: FeedMember): void {
    const key = logKey(log);
    const entry = this.feeds.get(key);
    if (!entry) return;
    void entry.feed.then(
      (feed) => {
        feed.leave(member);
        this.closeIfUnused(key);
      },
      () => undefined,
    );
  }

  async closeAll(): Promise<void> {
    const entries = [...this.feeds.values()];
    this.feeds.clear();
    this.breaks.close();
    await Promise.allSettled(entries.map(async (entry) => (await entry.feed).close()));
  }

  private closeIfUnused(key: string): void {
    const entry = this.feeds.get(key);
    if (!entry || entry.opening > 0) return;
    void entry.feed.then(
      (feed) => {
        if (feed.size === 0 && entry.opening === 0 && this.feeds.get(key) === entry) {
          this.feeds.delete(key);
          void feed.close();
        }
      },
      () => undefined,
    );
  }

  private forget(key: string, feed: Promise<RoomFeed>): void {
    if (this.feeds.get(key)?.feed === feed) this.feeds.delete(key);
  }
}
