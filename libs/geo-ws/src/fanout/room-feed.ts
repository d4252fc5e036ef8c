import type { GeoWireCodec } from '../protocol/wire.js';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoReadResult, GeoTransport, GeoSubscription } from '../transport/geo-transport.interface.js';
import type { GeoLogRef } from '../transport/log-ref.js';
import type { JoinOutcome, JoinPosition } from '../protocol/frames.js';
import { RecentEvents } from './recent-events.js';
import type { ReplayBudget, ReplayTarget } from './replay-budget.js';

/** A local receiver of a feed's events (one per connection and log). */
export interface FeedMember extends ReplayTarget {
  /** The member's wire codec (metrics count deliveries by codec). */
  readonly codec: GeoWireCodec;
  deliver(event: GeoLoggedEnvelope): void;
  deliverEphemeral(envelope: GeoEnvelopeDraft): void;
  /** The feed broke (e.g. the log was deleted): the member is no longer in it. */
  evicted(log: GeoLogRef, reason: string): void;
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

/**
 * What a feed needs from the node's feeds. Shared by every feed of the node, so a feed
 * holds one reference instead of a copy of each, and no closure of its own.
 */
export interface FeedHost {
  readonly transport: GeoTransport;
  readonly budget: ReplayBudget;
  /** Metrics, when they are on. */
  readonly observer?: FeedObserver;
  /** The feed's live tail stopped (its members were told): the host forgets it and logs why. */
  broken(feed: RoomFeed, reason: string): void;
  /** The feed started holding recent events: the host sweeps them from now on (see {@link RecentEvents}). */
  holding(feed: RoomFeed): void;
  /** Each live event of the node's feeds, when rooms follow their traffic (`HomeFollower`). */
  readonly traffic?: (log: GeoLogRef, event: GeoLoggedEnvelope) => void;
}

/** A member whose replay runs: live events for it are held until the replay hands over. */
interface Replaying {
  /** Last `seq` delivered to this member: nothing at or below it is delivered again. */
  cursor: number;
  /** Live events held back while the replay runs. */
  pending: GeoLoggedEnvelope[];
  /**
   * Set when more live events arrived during the replay than are held: they were dropped
   * and the replay reads them from the log instead (it runs on to the feed's position).
   */
  overflowed: boolean;
}

/**
 * Where a member is in a feed. A live member is a number: the `seq` it went live at, after
 * which it gets every event of the tail (events come in `seq` order, so once the feed is
 * past that number, the member is where the feed is); nothing is allocated or written per
 * live member, not on join, not on delivery. A replaying member is a {@link Replaying}.
 */
type Position = number | Replaying;

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
 *
 * Memory: a node may hold many feeds with one local member each (a client alone in each of
 * its rooms), so the feed keeps that member in two fields and makes a Map only for a
 * second one; every field is set in the constructor (no out-of-object properties).
 */
export class RoomFeed {
  /** The member while it is the only one… */
  private solo: FeedMember | undefined = undefined;
  private soloPosition: Position = 0;
  /** …and every member once a second one joined (`solo` is then unused). */
  private many: Map<FeedMember, Position> | undefined = undefined;
  private lastSeq = 0;
  private epoch = '';
  private tail: GeoSubscription | undefined = undefined;
  private ephemeral: GeoSubscription | undefined = undefined;
  /** The last live events, for resumes from memory; made at the first event after a sweep emptied it. */
  private recent: RecentEvents | undefined = undefined;
  /** History reads in flight, by the position they read after: replays from one position share them. */
  private reads: Map<number, Promise<GeoReadResult>> | undefined = undefined;
  private closed = false;
  /** Set by the host while {@link open} runs: joins wait for it. */
  opening: Promise<void> | undefined = undefined;
  /** Joins waiting for {@link opening}, counted by the host: the feed must not be closed under them. */
  waiting = 0;

  constructor(
    private readonly host: FeedHost,
    readonly log: GeoLogRef,
  ) {}

  /** Reads the log's head and opens the live tail and the ephemeral subscription there. */
  async open(): Promise<void> {
    const { transport } = this.host;
    const head = await transport.head(this.log);
    this.epoch = head.epoch;
    this.lastSeq = head.lastSeq;
    try {
      // Bound methods: 48 bytes each, where arrow functions cost 56 each plus a context.
      this.tail = await transport.tail(this.log, head.lastSeq, this.onEvent.bind(this), this.onTailError.bind(this));
      this.ephemeral = await transport.subscribeEphemeral(this.log, this.onEphemeral.bind(this));
    } catch (error) {
      await this.close();
      throw error;
    }
    // The tail may fail while the feed is still opening: nobody may join a broken feed.
    if (this.closed) throw this.unavailable();
  }

  get size(): number {
    return this.many ? this.many.size : this.solo ? 1 : 0;
  }

  has(member: FeedMember): boolean {
    return this.positionOf(member) !== undefined;
  }

  /**
   * The last `seq` this feed handed to a member that is live in it (what a session saves);
   * `undefined` for a member still replaying (before `geo.joined` its cursor is not yet
   * where the member is) or not in this feed.
   */
  cursorOf(member: FeedMember): number | undefined {
    const position = this.positionOf(member);
    return typeof position === 'number' ? Math.max(position, this.lastSeq) : undefined;
  }

  /**
   * Adds a member. `announce` is called once the outcome is known and before any event
   * reaches the member (it sends `geo.joined`); replayed events follow, then live ones.
   * Joining again (or leaving) cancels what an earlier join of the same member still had
   * to replay: every step checks that its state is still the member's current one.
   */
  async join(member: FeedMember, position: JoinPosition, announce: (outcome: JoinOutcome) => void): Promise<void> {
    if (this.closed) throw this.unavailable();
    const state: Replaying = { cursor: this.lastSeq, pending: [], overflowed: false };
    this.place(member, state);
    const live = this.lastSeq;
    const { since, epoch } = position;
    try {
      if (since === undefined || (since >= live && epoch === this.epoch)) {
        // Fresh join, or a client already at or past this node's position: live only.
        state.cursor = Math.max(live, since ?? 0);
        announce({ seq: state.cursor, epoch: this.epoch, recovered: true });
        this.goLive(member, state);
      } else if (epoch === undefined && since > 0) {
        // A position without its epoch may belong to an earlier incarnation of the log (a
        // deleted log numbers again): replayed from there, never vouched for.
        await this.replay(member, state, since, live, false, announce);
      } else {
        // `since: 0` is the whole log, whatever its epoch.
        const sameEpoch = epoch === undefined || epoch === this.epoch;
        const held = sameEpoch ? this.recent?.after(since) : undefined;
        if (held) this.replayHeld(member, state, since, held, announce);
        else await this.replay(member, state, sameEpoch ? since : 0, live, sameEpoch, announce);
      }
    } catch (error) {
      if (this.positionOf(member) === state) this.remove(member);
      throw error;
    }
  }

  leave(member: FeedMember): void {
    this.remove(member);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.recent = undefined;
    this.solo = undefined;
    this.soloPosition = 0;
    this.many = undefined;
    await Promise.allSettled([this.tail?.close(), this.ephemeral?.close()]);
  }

  private positionOf(member: FeedMember): Position | undefined {
    if (this.many) return this.many.get(member);
    return member === this.solo ? this.soloPosition : undefined;
  }

  private place(member: FeedMember, position: Position): void {
    if (this.many) {
      this.many.set(member, position);
    } else if (this.solo === undefined || this.solo === member) {
      this.solo = member;
      this.soloPosition = position;
    } else {
      this.many = new Map<FeedMember, Position>([
        [this.solo, this.soloPosition],
        [member, position],
      ]);
      this.solo = undefined;
      this.soloPosition = 0;
    }
  }

  private remove(member: FeedMember): void {
    if (this.many) {
      this.many.delete(member);
    } else if (this.solo === member) {
      this.solo = undefined;
      this.soloPosition = 0;
    }
  }

  /**
   * Replays `(from, live]` page by page under the instance's replay budget (past `live`
   * too if live events overflowed meanwhile), then hands over to live events in the same
   * synchronous step as the last check, so no live event can slip between the two.
   * Returns early once the join is cancelled.
   */
  private async replay(
    member: FeedMember,
    state: Replaying,
    from: number,
    live: number,
    sameEpoch: boolean,
    announce: (outcome: JoinOutcome) => void,
  ): Promise<void> {
    const { budget, observer } = this.host;
    const current = () => this.positionOf(member) === state;
    let after = from;
    let announced = false;
    while (!announced || state.cursor < (state.overflowed ? this.lastSeq : live)) {
      if (!(await budget.ready(member, current))) return;
      // Once the replay has reached what the feed holds, the rest comes from memory.
      const held = announced ? this.recent?.after(after) : undefined;
      if (held) {
        this.deliverHeld(member, state, held);
        break;
      }
      const page = await this.readPage(after);
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
      budget.spend(member, page.events.length);
      let replayed = 0;
      for (const event of page.events) {
        if (budget.isFull(member) && !(await budget.drained(member, current))) break;
        if (deliverTo(member, state, event)) observer?.delivered(event, 1, msgpackOf(member), false, false);
        replayed++;
      }
      if (replayed > 0) observer?.replayed(replayed);
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

  /**
   * Replays `(since, live]` from the events this feed holds, in the same synchronous step as
   * going live: no read, no wait, nothing can come between. Counted against the member's
   * replay allowance like a read.
   */
  private replayHeld(
    member: FeedMember,
    state: Replaying,
    since: number,
    held: GeoLoggedEnvelope[],
    announce: (outcome: JoinOutcome) => void,
  ): void {
    state.cursor = since;
    announce({ seq: Math.max(this.lastSeq, since), epoch: this.epoch, recovered: true });
    this.deliverHeld(member, state, held);
    this.goLive(member, state);
  }

  /** Hands held events to a replaying member (those it has not had), counted like a replay page. */
  private deliverHeld(member: FeedMember, state: Replaying, held: GeoLoggedEnvelope[]): void {
    const { budget, observer } = this.host;
    budget.spend(member, held.length);
    for (const event of held) if (deliverTo(member, state, event)) observer?.delivered(event, 1, msgpackOf(member), false, false);
    if (held.length > 0) observer?.replayed(held.length);
  }

  /** One page of history after `after`: replays from the same position share one read. */
  private readPage(after: number): Promise<GeoReadResult> {
    const reads = (this.reads ??= new Map<number, Promise<GeoReadResult>>());
    let page = reads.get(after);
    if (!page) {
      const { budget, transport } = this.host;
      page = budget.read(() => transport.read(this.log, after, budget.limits.batchSize));
      reads.set(after, page);
      const done = (): void => {
        reads.delete(after);
        if (reads.size === 0 && this.reads === reads) this.reads = undefined;
      };
      page.then(done, done);
    }
    return page;
  }

  /** The host's sweep: drops recent events held since the last one; true when none is left. */
  sweepRecent(): boolean {
    if (this.recent?.sweep() !== false) {
      this.recent = undefined;
      return true;
    }
    return false;
  }

  /** Delivers what was held for `member`, then makes it live at its cursor (a number from then on). */
  private goLive(member: FeedMember, state: Replaying): void {
    if (this.positionOf(member) !== state) return;
    const { observer } = this.host;
    for (const event of state.pending) if (deliverTo(member, state, event)) observer?.delivered(event, 1, msgpackOf(member), false, false);
    this.place(member, state.cursor);
  }

  private onEvent(event: GeoLoggedEnvelope): void {
    // The tail hands events in seq order: one not after the last is a repeat.
    if (this.closed || event.seq <= this.lastSeq) return;
    const { recentEvents } = this.host.budget.limits;
    if (recentEvents > 0) {
      if (!this.recent) {
        // Every event after the last one is held from here on.
        this.recent = new RecentEvents(this.lastSeq, recentEvents);
        this.host.holding(this);
      }
      this.recent.push(event);
    }
    this.lastSeq = event.seq;
    let delivered = 0;
    let msgpack = 0;
    if (this.many) {
      for (const [member, position] of this.many) {
        if (offer(member, position, event)) {
          delivered++;
          msgpack += msgpackOf(member);
        }
      }
    } else if (this.solo && offer(this.solo, this.soloPosition, event)) {
      delivered = 1;
      msgpack = msgpackOf(this.solo);
    }
    if (delivered > 0) this.host.observer?.delivered(event, delivered, msgpack, true, false);
    this.host.traffic?.(this.log, event);
  }

  private onEphemeral(envelope: GeoEnvelopeDraft): void {
    if (this.closed) return;
    let delivered = 0;
    let msgpack = 0;
    if (this.many) {
      for (const [member, position] of this.many) {
        if (typeof position !== 'number') continue; // replaying: ephemeral events are not held
        member.deliverEphemeral(envelope);
        delivered++;
        msgpack += msgpackOf(member);
      }
    } else if (this.solo && typeof this.soloPosition === 'number') {
      this.solo.deliverEphemeral(envelope);
      delivered = 1;
      msgpack = msgpackOf(this.solo);
    }
    if (delivered > 0) this.host.observer?.delivered(envelope, delivered, msgpack, true, true);
  }

  private onTailError(error: Error): void {
    this.break(error.message);
  }

  /** The refusal for a join that cannot be served by this feed: the client joins again. */
  private unavailable(reason = 'its live tail stopped'): GeoProtocolError {
    return new GeoProtocolError(GeoErrorCode.UNAVAILABLE, `room "${this.log.room}": ${reason}; join it again`);
  }

  private break(reason: string): void {
    const members = this.many ? [...this.many.keys()] : this.solo ? [this.solo] : [];
    void this.close();
    this.host.broken(this, reason);
    for (const member of members) member.evicted(this.log, reason);
  }
}

/**
 * A live event for one member: delivered to a live member past its starting point, held
 * for a replaying one (or, past what is held, left to its replay). True if delivered.
 */
function offer(member: FeedMember, position: Position, event: GeoLoggedEnvelope): boolean {
  if (typeof position === 'number') {
    if (event.seq <= position) return false;
    member.deliver(event);
    return true;
  }
  if (position.pending.length < MAX_PENDING_EVENTS) position.pending.push(event);
  else {
    position.pending = [];
    position.overflowed = true;
  }
  return false;
}

/** Delivers a replayed or held event to a replaying member; false when the member has it already. */
function deliverTo(member: FeedMember, state: Replaying, event: GeoLoggedEnvelope): boolean {
  if (event.seq <= state.cursor) return false;
  state.cursor = event.seq;
  member.deliver(event);
  return true;
}

/** 1 for a MessagePack member, for the count by codec. */
function msgpackOf(member: FeedMember): number {
  return member.codec === 'msgpack' ? 1 : 0;
}
