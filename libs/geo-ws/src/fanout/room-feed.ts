import { Logger } from '@nestjs/common';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import type { GeoTransport, Subscription } from '../transport/geo-transport.interface.js';
import type { LogRef } from '../transport/log-ref.js';

/** A local receiver of a feed's events (one per connection and log). */
export interface FeedMember {
  deliver(event: GeoLoggedEnvelope): void;
  deliverEphemeral(envelope: GeoEnvelopeDraft): void;
  /** The feed broke (e.g. the log was deleted): the member is no longer in it. */
  evicted(log: LogRef, reason: string): void;
}

/** Where a joining member starts. */
export interface JoinPosition {
  /** Last `seq` the client has; omitted for a fresh join (live only). */
  since?: number;
  /** The epoch `since` belongs to. */
  epoch?: string;
}

/** The answer to a join: what `geo.joined` tells the client. */
export interface JoinOutcome {
  /** The position the client will be at once the replay below is delivered; live events follow. */
  seq: number;
  epoch: string;
  /** False when events after `since` could not all be delivered (retention passed or another epoch). */
  recovered: boolean;
}

interface MemberState {
  /** Last `seq` delivered to this member: nothing at or below it is delivered again. */
  cursor: number;
  /** Live events held back while the member's replay runs; `null` once it is live. */
  pending: GeoLoggedEnvelope[] | null;
}

/**
 * One live tail of one log on this node, shared by every local member (never one
 * broker subscription per client).
 *
 * The replay-to-live hand-off is a single mechanism keyed by `seq`: a joining member is
 * registered before its replay starts, live events for it are held while it replays
 * `(since, live]`, and a per-member cursor drops anything it already has. So there is no
 * gap (every event after `live` is held) and no duplicate (the cursor), which is where
 * replays run beside a separate live reader go wrong.
 */
export class RoomFeed {
  private readonly logger = new Logger('GeoWs');
  private readonly members = new Map<FeedMember, MemberState>();
  private lastSeq = 0;
  private epoch = '';
  private tail: Subscription | undefined;
  private ephemeral: Subscription | undefined;
  private closed = false;

  private constructor(
    private readonly transport: GeoTransport,
    readonly log: LogRef,
    private readonly replayBatchSize: number,
    private readonly onBroken: (feed: RoomFeed) => void,
  ) {}

  static async open(transport: GeoTransport, log: LogRef, replayBatchSize: number, onBroken: (feed: RoomFeed) => void): Promise<RoomFeed> {
    const feed = new RoomFeed(transport, log, replayBatchSize, onBroken);
    const head = await transport.head(log);
    feed.epoch = head.epoch;
    feed.lastSeq = head.lastSeq;
    try {
      feed.tail = await transport.tail(log, head.lastSeq, (event) => feed.onEvent(event), (error) => feed.break(error.message));
      feed.ephemeral = await transport.subscribeEphemeral(log, (envelope) => feed.onEphemeral(envelope));
    } catch (error) {
      await feed.close();
      throw error;
    }
    return feed;
  }

  get size(): number {
    return this.members.size;
  }

  has(member: FeedMember): boolean {
    return this.members.has(member);
  }

  /**
   * Adds a member. `announce` is called once the outcome is known and before any event
   * reaches the member (it sends `geo.joined`); replayed events follow, then live ones.
   */
  async join(member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    const state: MemberState = { cursor: this.lastSeq, pending: [] };
    this.members.set(member, state);
    const live = this.lastSeq;
    const { since, epoch } = position;
    try {
      if (since === undefined || (since >= live && (epoch === undefined || epoch === this.epoch))) {
        // Fresh join, or a client already at or past this node's position: live only.
        state.cursor = Math.max(live, since ?? 0);
        announce({ seq: state.cursor, epoch: this.epoch, recovered: true });
      } else {
        const sameEpoch = epoch === undefined || epoch === this.epoch;
        await this.replay(member, state, sameEpoch ? since : 0, live, sameEpoch, announce);
      }
      this.goLive(member, state);
    } catch (error) {
      this.members.delete(member);
      throw error;
    }
  }

  leave(member: FeedMember): void {
    this.members.delete(member);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.members.clear();
    await Promise.allSettled([this.tail?.close(), this.ephemeral?.close()]);
  }

  private async replay(
    member: FeedMember,
    state: MemberState,
    from: number,
    live: number,
    sameEpoch: boolean,
    announce: (outcome: JoinOutcome) => void,
  ): Promise<void> {
    let after = from;
    let announced = false;
    while (!announced || state.cursor < live) {
      const page = await this.transport.read(this.log, after, this.replayBatchSize);
      if (page.epoch !== this.epoch) throw new Error(`log of room "${this.log.room}" changed epoch during the replay`);
      if (!announced) {
        announced = true;
        state.cursor = from;
        announce({ seq: Math.max(live, from), epoch: this.epoch, recovered: sameEpoch && !page.truncated });
      }
      if (!this.members.has(member)) return; // left during the replay
      for (const event of page.events) this.deliverTo(member, state, event);
      if (page.events.length === 0) break;
      after = page.events.at(-1)!.seq;
    }
  }

  private goLive(member: FeedMember, state: MemberState): void {
    const held = state.pending ?? [];
    state.pending = null;
    if (!this.members.has(member)) return;
    for (const event of held) this.deliverTo(member, state, event);
  }

  private deliverTo(member: FeedMember, state: MemberState, event: GeoLoggedEnvelope): void {
    if (event.seq <= state.cursor) return;
    state.cursor = event.seq;
    member.deliver(event);
  }

  private onEvent(event: GeoLoggedEnvelope): void {
    if (this.closed) return;
    this.lastSeq = event.seq;
    for (const [member, state] of this.members) {
      if (state.pending) state.pending.push(event);
      else this.deliverTo(member, state, event);
    }
  }

  private onEphemeral(envelope: GeoEnvelopeDraft): void {
    if (this.closed) return;
    for (const [member, state] of this.members) if (!state.pending) member.deliverEphemeral(envelope);
  }

  private break(reason: string): void {
    this.logger.warn(`Live tail of room "${this.log.room}" stopped: ${reason}`);
    const members = [...this.members.keys()];
    void this.close();
    this.onBroken(this);
    for (const member of members) member.evicted(this.log, reason);
  }
}
