import type { ClientConnection } from '../client-connection.js';
import { backoffDelay } from '../dialer/backoff.js';
import { GeoClientError } from '../errors.js';
import type { ClientEvents, EventDelivery, RoomHandler } from '../geo-client-events.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import { DEFAULT_MAX_FRAME_BYTES, utf8Length } from '../outbox/publish-frame.js';
import {
  GeoFeature,
  GeoFrame,
  type ErrorFrame,
  type GeoEnvelope,
  type JoinedFrame,
  type LeftFrame,
  type WelcomeFrame,
} from '../protocol.js';
import { LogCheck, type ConsistencyCounter } from './consistency.js';
import { ResumePoints } from './resume-points.js';

/** Shared, so a delivery allocates nothing. */
const LIVE: EventDelivery = Object.freeze({ replayed: false });
const REPLAYED: EventDelivery = Object.freeze({ replayed: true });

/** Where the client is in one log of a room. */
interface Position {
  seq: number;
  epoch?: string;
  /** The last `geo.joined` seq: events up to it come from history. */
  joinedAt?: number;
  /** Duplicates, regressions and gaps in this log (created at the first join). */
  check?: LogCheck;
}

interface RoomState {
  name: string;
  handlers: Set<RoomHandler>;
  global: Position;
  regional: Position & { region?: string };
  joined: boolean;
  waiters: { resolve(frame: JoinedFrame): void; reject(error: Error): void }[];
  /** Join attempts refused with a retryable code since the last `geo.joined`. */
  joinFailures: number;
  /** Set while the room waits to join again after a retryable refusal. */
  retryTimer?: ReturnType<typeof setTimeout>;
}

/** One room's `geo.join` data, alone or as an entry of `geo.join { rooms }`. */
interface JoinData {
  room: string;
  since?: number;
  epoch?: string;
  regional?: { since: number; epoch?: string };
}

/** Rooms in one `geo.join { rooms }` frame: the server's default `limits.maxRoomsPerConnection`. */
const MAX_ROOMS_PER_JOIN = 100;

/** Join refusals after which the client joins again (after a backoff delay). */
const RETRYABLE_JOIN_CODES = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL']);

/** What the room tracker needs of the outbox. */
export interface RoomPublishes {
  /** The room is joined (again): send its unacknowledged publishes, from the oldest. */
  send(room: string): void;
  /** The room is gone (left, ended by the server, its join refused): reject its publishes with `error`. */
  drop(room: string, error: GeoClientError): void;
}

/** Who the client is now, for what `storage` keeps. */
export type Identity = () => { sessionId: string | undefined; sender: string | undefined };

/**
 * The rooms this client is in, and where it is in each room's logs: it joins them (again
 * on every connection, from the last `seq` delivered, or from a saved or restored
 * position), hands their events to the handlers in order and each once (checking every
 * room-log event for duplicates, regressions and gaps), retries refused joins, and drops a
 * room the app left or the server ended. It owns the join retry timers.
 */
export class RoomTracker {
  private readonly rooms = new Map<string, RoomState>();
  private readonly resume: ResumePoints;
  /** The server of this connection takes many rooms in one `geo.join` (its welcome lists `join.rooms`). */
  private batchJoins = false;

  constructor(
    /** `backoff`, `maxInternalRetries` are read when used; `storage`, `storageKey` at construction. */
    private readonly options: GeoClientOptions,
    private readonly connection: ClientConnection,
    private readonly events: Pick<ClientEvents, 'emit' | 'runCallback'>,
    private readonly counter: ConsistencyCounter,
    private readonly publishes: RoomPublishes,
    identity: Identity,
  ) {
    this.resume = new ResumePoints(options.storage, options.storageKey ?? 'geo-ws', () => ({
      ...identity(),
      rooms: [...this.rooms.values()].map(({ name, global }) => ({ name, ...global })),
    }));
  }

  /** The session id `storage` kept with the positions, if any. */
  get savedSessionId(): string | undefined {
    return this.resume.savedSessionId;
  }

  /** The app is in the room (joined, or joining). */
  has(room: string): boolean {
    return this.rooms.has(room);
  }

  /** The room is joined on the current connection. */
  isJoined(room: string): boolean {
    return this.rooms.get(room)?.joined === true;
  }

  /** Every room is joined on the current connection (a draining connection waits for it). */
  allJoined(): boolean {
    for (const room of this.rooms.values()) if (!room.joined) return false;
    return true;
  }

  /** See `GeoClient.join`. The caller checks that the client is not closed. */
  join(room: string, handler: RoomHandler, position: { since?: number; epoch?: string }): Promise<JoinedFrame> {
    let state = this.rooms.get(room);
    if (!state) {
      const start = position.since !== undefined ? { seq: position.since, epoch: position.epoch } : (this.resume.of(room) ?? { seq: -1 });
      state = { name: room, handlers: new Set(), global: { ...start }, regional: { seq: -1 }, joined: false, waiters: [], joinFailures: 0 };
      this.rooms.set(room, state);
    }
    state.handlers.add(handler);
    const joinedState = state;
    return new Promise<JoinedFrame>((resolve, reject) => {
      joinedState.waiters.push({ resolve, reject });
      if (this.connection.isOpen) this.sendJoin(joinedState);
    });
  }

  /** See `GeoClient.leave`. */
  leave(room: string): void {
    const state = this.rooms.get(room);
    if (!state) return;
    this.forget(state);
    if (this.connection.isOpen) this.connection.send(GeoFrame.LEAVE, { room });
    const left = new GeoClientError('LEFT', `left room "${room}" before it was joined`);
    for (const waiter of state.waiters.splice(0)) waiter.reject(left);
    this.publishes.drop(room, new GeoClientError('LEFT', `left room "${room}" before the publish was acknowledged`));
  }

  // ---- the connection ------------------------------------------------------------------

  /** The client starts connecting: from now on a `pagehide` (a reload, a closed tab) writes the positions at once. */
  listenForPageHide(): void {
    this.resume.listenForPageHide();
  }

  /**
   * At `geo.welcome`: rooms this client has no position in resume from its own saved
   * positions (`storage`, if they are this sender's), else from the session the server
   * kept (`restored`).
   */
  restore(welcome: WelcomeFrame): void {
    this.resume.welcome(welcome);
    this.batchJoins = Array.isArray(welcome.features) && welcome.features.includes(GeoFeature.JOIN_ROOMS);
    for (const room of this.rooms.values()) {
      const start = room.global.seq < 0 ? this.resume.of(room.name) : undefined;
      if (start) room.global = { seq: start.seq, epoch: start.epoch };
    }
    this.resume.changed();
  }

  /**
   * Joins every room again on a new connection, each from where it is (`since`, `epoch`): in
   * one `geo.join { rooms }` (per 100 rooms) where the server takes it, so a client in many
   * rooms waits one round trip rather than one per room; else one frame per room.
   */
  rejoinAll(): void {
    const rooms = [...this.rooms.values()];
    if (!this.batchJoins || rooms.length < 2) {
      for (const room of rooms) this.sendJoin(room);
      return;
    }
    // Also cut by size, so a frame never exceeds what the server reads (long room ids and epochs).
    const maxBytes = (this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) - 64;
    let batch: JoinData[] = [];
    let bytes = 0;
    for (const room of rooms) {
      const request = this.joinRequest(room);
      const size = utf8Length(JSON.stringify(request)) + 1;
      if (batch.length === MAX_ROOMS_PER_JOIN || (batch.length > 0 && bytes + size > maxBytes)) {
        this.connection.send(GeoFrame.JOIN, { rooms: batch });
        [batch, bytes] = [[], 0];
      }
      batch.push(request);
      bytes += size;
    }
    this.connection.send(GeoFrame.JOIN, batch.length === 1 ? batch[0] : { rooms: batch });
  }

  /** The server answered a publish `NOT_JOINED` (it dropped the room): join it again. */
  rejoin(name: string): void {
    const room = this.rooms.get(name);
    if (room?.joined) {
      room.joined = false;
      if (this.connection.isOpen) this.sendJoin(room);
    }
  }

  /** The connection ended: no room is joined until the next one. */
  connectionLost(): void {
    for (const room of this.rooms.values()) {
      room.joined = false;
      room.global.check?.disconnected();
      room.regional.check?.disconnected();
    }
  }

  /** `close()`, first: the positions due are written now (with the sender still known), and no more. */
  flushPositions(): void {
    this.resume.flush();
  }

  /** `close()`: waiting joins reject with `reason`; no retry timer is left. */
  close(reason: GeoClientError): void {
    for (const room of this.rooms.values()) {
      room.joined = false;
      clearTimeout(room.retryTimer);
      for (const waiter of room.waiters.splice(0)) waiter.reject(reason);
    }
  }

  // ---- frames ---------------------------------------------------------------------------

  joined(joined: JoinedFrame): void {
    const room = this.rooms.get(joined.room);
    if (!room) return;
    const position = joined.scope === 'regional' ? room.regional : room.global;
    // Another epoch renumbers the log: what follows starts over.
    if (position.epoch !== undefined && position.epoch !== joined.epoch) position.seq = -1;
    if (position.seq < 0) position.seq = joined.recovered ? joined.seq : 0;
    position.epoch = joined.epoch;
    position.joinedAt = joined.seq;
    (position.check ??= new LogCheck()).joined(joined);
    this.resume.changed();
    if (joined.scope === 'regional') {
      room.regional.region = this.connection.region;
      return;
    }
    if (!joined.recovered) this.events.emit('gap', { room: room.name, epoch: joined.epoch });
    room.joined = true;
    room.joinFailures = 0;
    for (const waiter of room.waiters.splice(0)) waiter.resolve(joined);
    // Now the room exists here again: send what it has not acknowledged, from the oldest
    // (a lost connection or a NOT_JOINED answer marked everything unsent).
    this.publishes.send(room.name);
  }

  /**
   * `geo.left`. Without a code it answers the app's `leave()`, whose room is gone already.
   * With one, the server ended the membership: the room goes as after `leave()` (its
   * position is forgotten, it is not joined again), its waiting join and publishes are
   * rejected with that code, and the app is told (`left`).
   */
  left(left: LeftFrame): void {
    if (typeof left.code !== 'string') return;
    const room = this.rooms.get(left.room);
    if (!room) return;
    this.forget(room);
    const message = typeof left.message === 'string' ? left.message : `the server ended the membership of room "${room.name}"`;
    const ended = new GeoClientError(left.code, message);
    for (const waiter of room.waiters.splice(0)) waiter.reject(ended);
    this.publishes.drop(room.name, ended);
    this.events.emit('left', { room: room.name, code: left.code, message });
  }

  /**
   * A `geo.error` about a room and no publish: a join refused. Refused for good, the room
   * is gone, and so is every publish waiting for it; retryable (or the room's log was reset
   * under a joined room), the room joins again after a backoff delay. Returns false when
   * the app is to hear of it as `error` (not about a room, or no join was waiting for it).
   */
  refused(error: ErrorFrame): boolean {
    const room = error.room ? this.rooms.get(error.room) : undefined;
    if (!room) return false;
    if (!room.joined && !this.mayRetryJoin(room, error.code)) {
      const refused = new GeoClientError(error.code, error.message);
      const waiters = room.waiters.splice(0);
      for (const waiter of waiters) waiter.reject(refused);
      this.rooms.delete(room.name);
      clearTimeout(room.retryTimer);
      this.publishes.drop(room.name, refused);
      return waiters.length > 0;
    }
    if (!RETRYABLE_JOIN_CODES.has(error.code)) return false;
    room.joined = false;
    clearTimeout(room.retryTimer);
    room.retryTimer = setTimeout(
      () => {
        room.retryTimer = undefined;
        if (this.connection.isOpen && this.rooms.get(room.name) === room && !room.joined) this.sendJoin(room);
      },
      backoffDelay(room.joinFailures, this.options.backoff),
    );
    return true;
  }

  /**
   * A room event: delivered to the room's handlers unless the client has it already. A
   * room-log event is checked against what was delivered from its log (global or
   * regional): a duplicate or a regression is dropped, and each anomaly counted and emitted.
   */
  event(envelope: GeoEnvelope): void {
    const room = this.rooms.get(envelope.room_id);
    if (!room) return;
    let delivery = LIVE;
    if (envelope.seq !== null) {
      const position = envelope.scope === 'regional' ? room.regional : room.global;
      const delivered = position.seq;
      const verdict = position.check?.check(envelope.seq, envelope.event_id, delivered);
      if (verdict?.anomaly) {
        this.counter.anomaly(verdict.anomaly);
        const { scope } = envelope;
        this.events.emit('anomaly', {
          kind: verdict.anomaly,
          room: room.name,
          ...(scope ? { scope } : {}),
          seq: envelope.seq,
          expected: delivered + 1,
          eventId: envelope.event_id,
        });
      }
      // Not delivered: already delivered (before a reconnect, or before a reload with
      // `storage`), or a duplicate or regression.
      if (envelope.seq <= delivered || (verdict && !verdict.deliver)) {
        // A duplicate stored again at a higher seq still moves the position past it.
        if (envelope.seq > delivered) {
          position.seq = envelope.seq;
          this.resume.changed();
        }
        return;
      }
      position.seq = envelope.seq;
      if (envelope.seq <= (position.joinedAt ?? -1)) delivery = REPLAYED;
      this.resume.changed();
      this.counter.delivered();
    }
    for (const handler of room.handlers) this.events.runCallback(() => handler(envelope, delivery), `a handler of room "${room.name}"`);
  }

  // ---- internals ------------------------------------------------------------------------

  /** Sends `geo.join` for one room (a first join, a retry after a refusal, a rejoin after NOT_JOINED). */
  private sendJoin(room: RoomState): void {
    this.connection.send(GeoFrame.JOIN, this.joinRequest(room));
  }

  /**
   * What `geo.join` says of a room, from where it is: `since`/`epoch` of its global log, its
   * regional one in the same region. The room's logs start expecting the answer from here.
   */
  private joinRequest(room: RoomState): JoinData {
    clearTimeout(room.retryTimer);
    room.retryTimer = undefined;
    const { global, regional } = room;
    const sameRegion = regional.region === this.connection.region;
    (global.check ??= new LogCheck()).joining(global.seq >= 0 ? global.seq : undefined);
    (regional.check ??= new LogCheck()).joining(sameRegion && regional.seq >= 0 ? regional.seq : undefined);
    return {
      room: room.name,
      ...(global.seq >= 0 ? { since: global.seq, ...(global.epoch ? { epoch: global.epoch } : {}) } : {}),
      // A regional log belongs to one region: resume it only where it was.
      ...(sameRegion && regional.seq >= 0 ? { regional: { since: regional.seq, epoch: regional.epoch } } : {}),
    };
  }

  /** A join refused with a code worth another try: `INTERNAL` only `maxInternalRetries` times. */
  private mayRetryJoin(room: RoomState, code: string): boolean {
    if (!RETRYABLE_JOIN_CODES.has(code)) return false;
    room.joinFailures++;
    return code !== 'INTERNAL' || room.joinFailures <= (this.options.maxInternalRetries ?? 3);
  }

  /** The room is no longer the app's: not joined again, its position forgotten. */
  private forget(room: RoomState): void {
    this.rooms.delete(room.name);
    clearTimeout(room.retryTimer);
    this.resume.forget(room.name);
  }
}
