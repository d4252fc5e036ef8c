import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { STATE_ID_PATTERN, type GeoSessionState, type GeoStateStore } from '../transport/geo-state-store.interface.js';

/** One connection's session: its id and where it is in each room (global logs). */
export class Session {
  readonly positions = new Map<string, { seq: number; epoch: string }>();
  dirty = false;

  constructor(
    readonly id: string,
    readonly sender: string,
  ) {}

  joined(room: string, seq: number, epoch: string): void {
    this.positions.set(room, { seq, epoch });
    this.dirty = true;
  }

  delivered(room: string, seq: number): void {
    const position = this.positions.get(room);
    if (!position || seq <= position.seq) return;
    position.seq = seq;
    this.dirty = true;
  }

  left(room: string): void {
    if (this.positions.delete(room)) this.dirty = true;
  }
}

/**
 * Keeps each connection's rooms and positions in the transport's state store (G6), so a
 * client that reconnects anywhere with its session id gets them back in `geo.welcome`,
 * even if it lost its own copy. Saved every `saveEveryMs` while they change, and on close.
 */
export class SessionKeeper {
  private readonly logger = new Logger(SessionKeeper.name);
  private readonly open = new Set<Session>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: GeoStateStore,
    private readonly ttlMs: number,
    saveEveryMs: number,
  ) {
    this.timer = setInterval(() => {
      for (const session of this.open) if (session.dirty) void this.save(session);
    }, saveEveryMs);
    this.timer.unref();
  }

  /**
   * The session of a new connection: the one it names, if valid and the same sender's
   * (positions never cross identities), else a new one. Returns what was restored.
   */
  async start(requestedId: string | undefined, sender: string): Promise<{ session: Session; restored?: GeoSessionState['rooms'] }> {
    let restored: GeoSessionState['rooms'] | undefined;
    if (requestedId && STATE_ID_PATTERN.test(requestedId)) {
      const stored = await this.store.getSession(requestedId).catch((error: unknown) => {
        this.logger.warn(`session ${requestedId} not loaded: ${(error as Error).message}`);
        return null;
      });
      if (stored && stored.sender === sender) restored = stored.rooms;
    }
    const session = new Session(restored ? requestedId! : randomUUID(), sender);
    for (const [room, position] of Object.entries(restored ?? {})) session.positions.set(room, { ...position });
    this.open.add(session);
    return { session, restored };
  }

  async end(session: Session): Promise<void> {
    this.open.delete(session);
    if (session.dirty) await this.save(session);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async save(session: Session): Promise<void> {
    session.dirty = false;
    const state: GeoSessionState = { sender: session.sender, rooms: Object.fromEntries(session.positions), updatedAt: Date.now() };
    await this.store.putSession(session.id, state, this.ttlMs).catch((error: unknown) => {
      session.dirty = true; // try again at the next save
      this.logger.warn(`session ${session.id} not saved: ${(error as Error).message}`);
    });
  }
}
