import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { FeedMember } from '../fanout/room-feed.js';
import { STATE_ID_PATTERN, type GeoSessionState, type GeoStateStore } from '../transport/geo-state-store.interface.js';
import { SessionStoreLog } from './session-store-log.js';

/** A session's read, started while its connection's handshake still runs. */
export interface SessionRead {
  id: string;
  stored: Promise<GeoSessionState | null>;
}

type RoomPosition = GeoSessionState['rooms'][string];

/**
 * Where a member is now in a room's global log: the last `seq` its feed handed to it, or
 * `undefined` when it is not live there (the session then keeps the position it has).
 */
export type PositionReader = (member: FeedMember, room: string) => number | undefined;

export interface SessionKeeperOptions {
  /** A session expires this long after its last save. */
  ttlMs: number;
  /** How long a new connection waits for the session it names before it gets a new one. */
  loadTimeoutMs: number;
}

/** Changes of one session this close together are saved in one write (a resume joins many rooms in a row)… */
export const SAVE_DEBOUNCE_MS = 50;
/** …but one that keeps changing is saved at least this often. */
export const SAVE_MAX_DELAY_MS = 1000;
/** A failed save is tried again after this many ms times the attempt, at most {@link MAX_SAVE_RETRIES} times. */
const SAVE_RETRY_MS = 2000;
const MAX_SAVE_RETRIES = 3;
/** Timed-out session loads are logged at most this often (a failover times out thousands at once). */
const LOAD_WARNING_EVERY_MS = 10_000;

/**
 * One connection's session: its id, its rooms, and its position in each room as of the last
 * membership change. Nothing here moves on delivery: the positions are read from the feeds
 * when a join, leave or close saves the session.
 */
export class Session {
  /** Rooms and positions as last saved (or restored), updated from the feeds at each save. */
  readonly rooms = new Map<string, RoomPosition>();
  /** The connection joined or left something: its close saves where it is. */
  touched = false;
  /** Closed: nothing more is scheduled; a save still running or retrying completes. */
  ended = false;
  /** The pending save (debounce or retry), and when its burst of changes began. */
  timer: NodeJS.Timeout | undefined;
  burstStartedAt = 0;
  /** The last write issued: the next one waits for it, so they land in order. */
  writing: Promise<void> | undefined;
  retries = 0;

  constructor(
    readonly id: string,
    readonly sender: string,
    /** The connection, as its feeds know it: where its positions are read. */
    readonly member: FeedMember,
    private readonly keeper: SessionKeeper,
  ) {}

  /** Joined `room` at `seq` (where the client was before any replay) in log `epoch`. */
  joined(room: string, seq: number, epoch: string): void {
    this.rooms.set(room, { seq, epoch });
    this.keeper.changed(this);
  }

  left(room: string): void {
    if (this.rooms.delete(room)) this.keeper.changed(this);
  }
}

/**
 * Keeps each connection's rooms and positions in the transport's state store (G6), so a
 * client that reconnects anywhere with its session id gets them back in `geo.welcome`,
 * even if it lost its own copy.
 *
 * Broker writes grow with membership changes only: a join or leave saves the session (a
 * burst of them in one write), a close saves it once more with the positions the feeds
 * last handed to the connection. Deliveries never touch a session, and no timer scans
 * them. A server that dies without closing its connections leaves each session as of its
 * last join or leave: a client restoring it is replayed what came after (docs/CLIENT.md).
 */
export class SessionKeeper {
  private readonly logger = new Logger(SessionKeeper.name);
  /** Sessions with a save scheduled (so shutdown can write them now). */
  private readonly scheduled = new Set<Session>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private loadTimeouts = 0;
  private lastLoadWarningAt = 0;
  /** Failed writes and reads, counted: a store that goes away fails every session at once. */
  private readonly saveFailures = new SessionStoreLog('save');
  private readonly loadFailures = new SessionStoreLog('load');

  constructor(
    private readonly store: GeoStateStore,
    private readonly options: SessionKeeperOptions,
    private readonly positionOf: PositionReader,
  ) {}

  /**
   * Starts reading the session `requestedId` names, if it is a valid id (within
   * `loadTimeoutMs`; never rejects), so the read can run beside other handshake work.
   */
  read(requestedId: string | undefined): SessionRead | undefined {
    return requestedId && STATE_ID_PATTERN.test(requestedId) ? { id: requestedId, stored: this.load(requestedId) } : undefined;
  }

  /**
   * The session of a new connection: the one it names (an id, or its {@link read} already
   * under way), if valid, the same sender's (positions never cross identities) and read
   * within `loadTimeoutMs`, else a new one. Returns what was restored.
   */
  async start(
    requested: string | SessionRead | undefined,
    sender: string,
    member: FeedMember,
  ): Promise<{ session: Session; restored?: GeoSessionState['rooms'] }> {
    let restored: GeoSessionState['rooms'] | undefined;
    const read = typeof requested === 'string' ? this.read(requested) : requested;
    if (read) {
      const stored = await read.stored;
      if (stored && stored.sender === sender) restored = stored.rooms;
    }
    const session = new Session(restored ? read!.id : randomUUID(), sender, member, this);
    for (const [room, position] of Object.entries(restored ?? {})) session.rooms.set(room, { ...position });
    return { session, restored };
  }

  /** A session's membership changed: saved once its burst of changes is over. */
  changed(session: Session): void {
    session.touched = true;
    if (session.ended || this.closed) return;
    const now = Date.now();
    if (session.timer === undefined) {
      session.burstStartedAt = now;
      this.schedule(session, SAVE_DEBOUNCE_MS);
    } else if (session.retries === 0 && now + SAVE_DEBOUNCE_MS - session.burstStartedAt <= SAVE_MAX_DELAY_MS) {
      session.timer.refresh();
    }
  }

  /**
   * The connection closed (or drained): its session is saved with where the connection is
   * now, if it joined or left anything. Call it before the connection leaves its feeds.
   */
  end(session: Session): Promise<void> {
    if (session.ended) return session.writing ?? Promise.resolve();
    session.ended = true;
    this.unschedule(session);
    return session.touched ? this.save(session) : Promise.resolve();
  }

  /** Shutdown: writes every scheduled save now and waits for all writes. */
  async close(): Promise<void> {
    this.closed = true;
    for (const session of [...this.scheduled]) {
      this.unschedule(session);
      void this.save(session);
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    this.saveFailures.close();
    this.loadFailures.close();
  }

  private async load(id: string): Promise<GeoSessionState | null> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        this.loadTimedOut(id);
        resolve(null);
      }, this.options.loadTimeoutMs);
    });
    const read = this.store.getSession(id).catch((error: unknown) => {
      this.loadFailures.hit(id, (error as Error).message);
      return null;
    });
    try {
      return await Promise.race([read, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A slow state store must not hold back `geo.welcome` (clients give up on it): new sessions, one warning. */
  private loadTimedOut(id: string): void {
    this.loadTimeouts++;
    const now = Date.now();
    if (now - this.lastLoadWarningAt < LOAD_WARNING_EVERY_MS) return;
    this.logger.warn(
      `session ${id} not loaded within ${this.options.loadTimeoutMs} ms: the connection gets a new session ` +
        `(${this.loadTimeouts} such connection(s) since the last warning; clients that kept their positions resume from them)`,
    );
    this.loadTimeouts = 0;
    this.lastLoadWarningAt = now;
  }

  private schedule(session: Session, delayMs: number): void {
    session.timer = setTimeout(() => {
      this.unschedule(session);
      void this.save(session);
    }, delayMs);
    session.timer.unref();
    this.scheduled.add(session);
  }

  private unschedule(session: Session): void {
    clearTimeout(session.timer);
    session.timer = undefined;
    this.scheduled.delete(session);
  }

  /** Writes the whole session as it is now; writes of one session land in the order they were made. */
  private save(session: Session): Promise<void> {
    const state = this.snapshot(session);
    const write: Promise<void> = (session.writing ?? Promise.resolve())
      .then(() => this.store.putSession(session.id, state, this.options.ttlMs))
      .then(
        () => {
          session.retries = 0;
        },
        (error: unknown) => this.failed(session, write, error),
      );
    session.writing = write;
    this.inFlight.add(write);
    void write.finally(() => {
      this.inFlight.delete(write);
      if (session.writing === write) session.writing = undefined;
    });
    return write;
  }

  /** Rooms with the positions the feeds last handed to the connection (live rooms), else the ones kept. */
  private snapshot(session: Session): GeoSessionState {
    const rooms: GeoSessionState['rooms'] = {};
    for (const [room, position] of session.rooms) {
      const seq = this.positionOf(session.member, room);
      if (seq !== undefined && seq > position.seq) position.seq = seq;
      rooms[room] = { seq: position.seq, epoch: position.epoch };
    }
    return { sender: session.sender, rooms, updatedAt: Date.now() };
  }

  private failed(session: Session, write: Promise<void>, error: unknown): void {
    const retry = session.writing === write && session.retries < MAX_SAVE_RETRIES && !this.closed;
    this.saveFailures.hit(session.id, (error as Error).message, retry);
    // A later write (already queued) saves everything this one had.
    if (!retry || session.timer !== undefined) return;
    session.retries++;
    this.schedule(session, SAVE_RETRY_MS * session.retries);
  }
}
