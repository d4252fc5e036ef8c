import type { GeoWireCodec } from '../protocol/wire.js';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoTransport, Subscription } from '../transport/geo-transport.interface.js';
import type { LogRef } from '../transport/log-ref.js';
import type { JoinOutcome, JoinPosition } from '../protocol/frames.js';
import type { ReplayBudget, ReplayTarget } from './replay-budget.js';

/** A local receiver of a feed's events (one per connection and log). */
export interface FeedMember extends ReplayTarget {
  /** The member's wire codec (metrics count deliveries by codec). */
  readonly codec: GeoWireCodec;
  deliver(event: GeoLoggedEnvelope): void;
  deliverEphemeral(envelope: GeoEnvelopeDraft): void;
  /** The feed broke (e.g. the log was deleted): the member is no longer in it. */
  evicted(log: LogRef, reason: string): void;
}

/**
 * What a node's feeds report for metrics: once per event per feed (never per member),
 * and the events each replay page handed over.
 */
export interface FeedObserver {
  /**
   * `event` was handed to `members` local members, `msgpackMembers` of them MessagePack
   * ones; `live` for the tail's own delivery, once per event.
   */
  delivered(event: GeoLoggedEnvelope | GeoEnvelopeDraft, members: number, msgpackMembers: number, live: boolean, ephemeral: boolean): void;
  replayed(events: number): void;
  /** The feed's live tail stopped (its members join again). */
  tailStopped(): void;
}

interface MemberState {
  /** Last `seq` delivered to this member: nothing at or below it is delivered again. */
  cursor: number;
  /** Live events held back while the member's replay runs; `null` once it is live. */
  pending: GeoLoggedEnvelope[] | null;
  /**
   * Set when more live events arrived during the replay than are held: they were dropped
   * and the replay reads them from the log instead (it runs on to the feed's position).
   */
  overflowed: boolean;
}

/** Live events held per replaying member; past this the replay catches up from the log. */
const MAX_PENDING_EVENTS = 1000;

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
  private readonly members = new Map<FeedMember, MemberState>();
  private lastSeq = 0;
  private epoch = '';
  private tail: Subscription | undefined;
  private ephemeral: Subscription | undefined;
  private closed = false;

  private constructor(
    private readonly transport: GeoTransport,
    readonly log: LogRef,
    private readonly budget: ReplayBudget,
    /** Its live tail stopped (the owner logs why): the feed is closed and its members told. */
    private readonly onBroken: (reason: string) => void,
    private readonly observer: FeedObserver | undefined,
  ) {}

  static async open(
    transport: GeoTransport,
    log: LogRef,
    budget: ReplayBudget,
    onBroken: (reason: string) => void,
    observer?: FeedObserver,
  ): Promise<RoomFeed> {
    const feed = new RoomFeed(transport, log, budget, onBroken, observer);
    const head = await transport.head(log);
    feed.epoch = head.epoch;
    feed.lastSeq = head.lastSeq;
    try {
      feed.tail = await transport.tail(
        log,
        head.lastSeq,
        (event) => feed.onEvent(event),
        (error) => feed.break(error.message),
      );
      feed.ephemeral = await transport.subscribeEphemeral(log, (envelope) => feed.onEphemeral(envelope));
    } catch (error) {
      await feed.close();
      throw error;
    }
    // The tail may fail while the feed is still opening: nobody may join a broken feed.
    if (feed.closed) throw feed.unavailable();
    return feed;
  }

  get size(): number {
    return this.members.size;
  }

  has(member: FeedMember): boolean {
    return this.members.has(member);
  }

  /**
   * The last `seq` this feed handed to a member that is live in it (what a session saves);
   * `undefined` for a member still replaying (before `geo.joined` its cursor is not yet
   * where the member is) or not in this feed.
   */
  cursorOf(member: FeedMember): number | undefined {
    const state = this.members.get(member);
    return state && !state.pending ? state.cursor : undefined;
  }

  /**
   * Adds a member. `announce` is called once the outcome is known and before any event
   * reaches the member (it sends `geo.joined`); replayed events follow, then live ones.
   * Joining again (or leaving) cancels what an earlier join of the same member still had
   * to replay: every step checks that its state is still the member's current one.
   */
  async join(member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    if (this.closed) throw this.unavailable();
    const state: MemberState = { cursor: this.lastSeq, pending: [], overflowed: false };
    this.members.set(member, state);
    const live = this.lastSeq;
    const { since, epoch } = position;
    try {
      if (since === undefined || (since >= live && (epoch === undefined || epoch === this.epoch))) {
        // Fresh join, or a client already at or past this node's position: live only.
        state.cursor = Math.max(live, since ?? 0);
        announce({ seq: state.cursor, epoch: this.epoch, recovered: true });
        this.goLive(member, state);
      } else {
        const sameEpoch = epoch === undefined || epoch === this.epoch;
        await this.replay(member, state, sameEpoch ? since : 0, live, sameEpoch, announce);
      }
    } catch (error) {
      if (this.members.get(member) === state) this.members.delete(member);
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

  /**
   * Replays `(from, live]` page by page under the instance's replay budget (past `live`
   * too if live events overflowed meanwhile), then hands over to live events in the same
   * synchronous step as the last check, so no live event can slip between the two.
   * Returns early once the join is cancelled.
   */
  private async replay(
    member: FeedMember,
    state: MemberState,
    from: number,
    live: number,
    sameEpoch: boolean,
    announce: (outcome: JoinOutcome) => void,
  ): Promise<void> {
    const current = () => this.members.get(member) === state;
    let after = from;
    let announced = false;
    while (!announced || state.cursor < (state.overflowed ? this.lastSeq : live)) {
      if (!(await this.budget.ready(member, current))) return;
      const page = await this.budget.read(() => this.transport.read(this.log, after, this.budget.limits.batchSize));
      if (!current()) return;
      if (page.epoch !== this.epoch) throw this.unavailable('its log was reset during the replay');
      if (!announced) {
        announced = true;
        state.cursor = from;
        announce({ seq: Math.max(live, from), epoch: this.epoch, recovered: sameEpoch && !page.truncated });
      } else if (page.truncated) {
        // Retention passed this member while its replay was paced: it has to rejoin.
        throw new GeoProtocolError(
          GeoErrorCode.UNAVAILABLE,
          `history of room "${this.log.room}" was trimmed past this connection's replay; join again`,
        );
      }
      this.budget.spend(member, page.events.length);
      let replayed = 0;
      for (const event of page.events) {
        if (this.budget.isFull(member) && !(await this.budget.drained(member, current))) break;
        if (this.deliverTo(member, state, event)) this.observer?.delivered(event, 1, msgpackOf(member), false, false);
        replayed++;
      }
      if (replayed > 0) this.observer?.replayed(replayed);
      if (replayed < page.events.length) return; // cancelled while waiting for the member to drain
      if (page.events.length === 0) {
        if (state.overflowed && state.cursor < this.lastSeq) {
          throw new GeoProtocolError(
            GeoErrorCode.UNAVAILABLE,
            `replay of room "${this.log.room}" could not catch up with the live tail; join again`,
          );
        }
        break;
      }
      after = page.events.at(-1)!.seq;
    }
    this.goLive(member, state);
  }

  private goLive(member: FeedMember, state: MemberState): void {
    const held = state.pending ?? [];
    state.pending = null;
    if (this.members.get(member) !== state) return;
    for (const event of held) if (this.deliverTo(member, state, event)) this.observer?.delivered(event, 1, msgpackOf(member), false, false);
  }

  /** False when the member has the event already. */
  private deliverTo(member: FeedMember, state: MemberState, event: GeoLoggedEnvelope): boolean {
    if (event.seq <= state.cursor) return false;
    state.cursor = event.seq;
    member.deliver(event);
    return true;
  }

  private onEvent(event: GeoLoggedEnvelope): void {
    if (this.closed) return;
    this.lastSeq = event.seq;
    let delivered = 0;
    let msgpack = 0;
    for (const [member, state] of this.members) {
      if (!state.pending) {
        if (this.deliverTo(member, state, event)) {
          delivered++;
          msgpack += msgpackOf(member);
        }
      } else if (state.pending.length < MAX_PENDING_EVENTS) state.pending.push(event);
      else {
        state.pending = [];
        state.overflowed = true;
      }
    }
    if (delivered > 0) this.observer?.delivered(event, delivered, msgpack, true, false);
  }

  private onEphemeral(envelope: GeoEnvelopeDraft): void {
    if (this.closed) return;
    let delivered = 0;
    let msgpack = 0;
    for (const [member, state] of this.members) {
      if (state.pending) continue;
      member.deliverEphemeral(envelope);
      delivered++;
      msgpack += msgpackOf(member);
    }
    if (delivered > 0) this.observer?.delivered(envelope, delivered, msgpack, true, true);
  }

  /** The refusal for a join that cannot be served by this feed: the client joins again. */
  private unavailable(reason = 'its live tail stopped'): GeoProtocolError {
    return new GeoProtocolError(GeoErrorCode.UNAVAILABLE, `room "${this.log.room}": ${reason}; join it again`);
  }

  private break(reason: string): void {
    const members = [...this.members.keys()];
    void this.close();
    this.onBroken(reason);
    for (const member of members) member.evicted(this.log, reason);
  }
}

/** 1 for a MessagePack member, for the count by codec. */
function msgpackOf(member: FeedMember): number {
  return member.codec === 'msgpack' ? 1 : 0;
}
