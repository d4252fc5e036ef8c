import type { WelcomeFrame } from '../protocol.js';
import type { PositionStorage } from '../geo-client-options.js';
import { PositionStore, type SavedPositions } from './position-store.js';

/** A position in a room's global log. */
export interface ResumePoint {
  seq: number;
  epoch: string;
}

/** What the client holds now, for `storage`: whose positions, its session, each room's global position. */
export interface LivePositions {
  sessionId: string | undefined;
  sender: string | undefined;
  rooms: Iterable<{ name: string; seq: number; epoch?: string }>;
}

/** The browser's window, for `pagehide`; Node has none. */
const page = globalThis as unknown as {
  addEventListener?(type: 'pagehide', listener: () => void): void;
  removeEventListener?(type: 'pagehide', listener: () => void): void;
};

/**
 * Where a room joined without a position resumes: this client's own position saved in
 * `storage` by an earlier page load (if it is this sender's), else the one the server kept
 * for the session (`restored` of `geo.welcome`). With `storage`, it also writes the
 * positions back as they move (coalesced by {@link PositionStore}, at once on `pagehide`
 * and on close).
 */
export class ResumePoints {
  /** Positions the server kept for this session, for rooms joined without one. */
  private restored: Record<string, ResumePoint> = {};
  /** Positions from `storage` (this client's own, from an earlier page load), for rooms joined without one. */
  private readonly saved = new Map<string, ResumePoint>();
  private readonly savedSender: string | undefined;
  /** `saved` are known to be this sender's (checked at the first `geo.welcome`). */
  private savedChecked = false;
  private readonly store: PositionStore | undefined;
  /** The session id saved with the positions, if any. */
  readonly savedSessionId: string | undefined;
  private readonly onPageHide = (): void => this.store?.flush();

  constructor(storage: PositionStorage | undefined, key: string, live: () => LivePositions) {
    if (!storage) return;
    this.store = new PositionStore(storage, key, () => this.toSave(live()));
    const saved = this.store.load();
    this.saved = new Map(Object.entries(saved.rooms));
    this.savedSender = saved.sender;
    this.savedSessionId = saved.sessionId;
  }

  /** `geo.welcome`: the server's positions for this session; saved positions of another sender are dropped. */
  welcome(welcome: WelcomeFrame): void {
    this.restored = welcome.restored ?? {};
    if (!this.savedChecked) {
      this.savedChecked = true;
      if (this.savedSender !== undefined && this.savedSender !== welcome.sender) this.saved.clear();
    }
  }

  /** Where a room joined without a position resumes: the own saved position, else the server's. */
  of(room: string): ResumePoint | undefined {
    return (this.savedChecked ? this.saved.get(room) : undefined) ?? this.restored[room];
  }

  /** A position moved: written soon (coalesced). */
  changed(): void {
    this.store?.changed();
  }

  /** The room was left: its saved position goes too. */
  forget(room: string): void {
    if (!this.store) return;
    this.saved.delete(room);
    this.store.changed();
  }

  /** A reload or a closed tab: write the positions now (the coalescing timer would not fire). */
  listenForPageHide(): void {
    if (this.store) page.addEventListener?.('pagehide', this.onPageHide);
  }

  /** `close()`: what is due is written now, and nothing more is written on `pagehide`. */
  flush(): void {
    this.store?.flush();
    page.removeEventListener?.('pagehide', this.onPageHide);
  }

  /** What `storage` keeps: every room's global position (and saved rooms not joined in this page). */
  private toSave(live: LivePositions): SavedPositions {
    const rooms = Object.fromEntries(this.saved);
    for (const { name, seq, epoch } of live.rooms) if (seq >= 0 && epoch !== undefined) rooms[name] = { seq, epoch };
    return { sessionId: live.sessionId, sender: live.sender ?? this.savedSender, rooms };
  }
}
