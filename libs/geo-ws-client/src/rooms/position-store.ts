import type { PositionStorage } from '../geo-client-options.js';
/** What is kept: whose positions they are, their session, and the position in each room's global log. */
export interface SavedPositions {
  sessionId?: string;
  sender?: string;
  rooms: Record<string, { seq: number; epoch: string }>;
}

/** Positions move with every event: they are written at most this often (and at once on close or page hide). */
export const STORAGE_WRITE_MS = 250;

/**
 * Reads the saved positions once and writes them back when they change, coalesced: the
 * client calls {@link changed} on every event; the storage sees one write per
 * {@link STORAGE_WRITE_MS} at most. A storage that throws (full, disabled, private mode)
 * costs the positions, never the client.
 */
export class PositionStore {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly storage: PositionStorage,
    private readonly key: string,
    /** The client's current positions, read when a write is due. */
    private readonly current: () => SavedPositions,
  ) {}

  /** The positions saved by an earlier client (another page load), or none. */
  load(): SavedPositions {
    try {
      return parseSaved(this.storage.getItem(this.key));
    } catch {
      return { rooms: {} };
    }
  }

  changed(): void {
    this.timer ??= setTimeout(() => this.write(), STORAGE_WRITE_MS);
  }

  /** Writes now if a write is due (close, page hide). */
  flush(): void {
    if (this.timer !== undefined) this.write();
  }

  private write(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      this.storage.setItem(this.key, JSON.stringify(this.current()));
    } catch {
      // Not kept: a reload then resumes from the server's session, or live.
    }
  }
}

/** Accepts only the shape {@link PositionStore} writes: anything else is no saved positions. */
export function parseSaved(raw: string | null): SavedPositions {
  const saved: SavedPositions = { rooms: {} };
  if (!raw) return saved;
  const value = JSON.parse(raw) as Partial<Record<keyof SavedPositions, unknown>> | null;
  if (typeof value !== 'object' || value === null) return saved;
  if (typeof value.sessionId === 'string') saved.sessionId = value.sessionId;
  if (typeof value.sender === 'string') saved.sender = value.sender;
  if (typeof value.rooms === 'object' && value.rooms !== null) {
    for (const [room, position] of Object.entries(value.rooms as Record<string, unknown>)) {
      const { seq, epoch } = (position ?? {}) as { seq?: unknown; epoch?: unknown };
      if (Number.isSafeInteger(seq) && (seq as number) >= 0 && typeof epoch === 'string') saved.rooms[room] = { seq: seq as number, epoch };
    }
  }
  return saved;
}
