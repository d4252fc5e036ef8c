/**
 * Shared state that no single server may keep alone (G6): session positions, token
 * revocations and room presence. Every transport provides one (`transport.state`), on
 * the same broker as its room logs, so any instance in any region sees the same state.
 */
export interface GeoStateStore {
  /** Saves a session (rooms and positions); it expires `ttlMs` after the last save. */
  putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void>;
  getSession(sessionId: string): Promise<GeoSessionState | null>;
  deleteSession(sessionId: string): Promise<void>;

  /**
   * Revokes a token id (`jti` or digest) until `expiresAt` (epoch ms), when the token dies
   * anyway, and announces it to every {@link watchRevocations} watcher, in every region.
   */
  revoke(tokenId: string, expiresAt: number): Promise<void>;
  isRevoked(tokenId: string): Promise<boolean>;
  /**
   * Calls `onRevoked(tokenId)` for revocations made from now on, by any instance in any
   * region, soon after each `revoke()` (servers close that token's connections). Delivery may
   * be at most once (Redis Pub/Sub): when announcements may have been missed (the channel was
   * disconnected and is back), `onMissed` is called, and the caller reads the statuses it
   * cares about again. The cost grows with revocations and reconnects, never with time or
   * connections. Resolves once watching; `close()` stops it.
   */
  watchRevocations(onRevoked: (tokenId: string) => void, onMissed?: () => void): Promise<GeoRevocationWatch>;

  /** Marks a member present in a room for `ttlMs`; heartbeats call it again before that passes. */
  touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void>;
  removePresence(room: string, memberId: string): Promise<void>;
  /** Members present in a room, in every region. */
  presence(room: string): Promise<GeoPresenceMember[]>;
}

/** A revocation watch (a `GeoSubscription` of the transport); `close()` is idempotent. */
export interface GeoRevocationWatch {
  close(): Promise<void>;
}

/** What a client needs to resume elsewhere: its rooms and positions. */
export interface GeoSessionState {
  sender: string;
  rooms: Record<string, { seq: number; epoch: string }>;
  updatedAt: number;
}

export interface GeoPresenceMember {
  /** Unique per member entry, e.g. the connection id. */
  id: string;
  sender: string;
  region: string;
}

/** Session ids, token ids and member ids: safe in every broker's key syntax. */
export const STATE_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Throws a clear error for an id that does not match {@link STATE_ID_PATTERN}. */
export function assertStateId(kind: string, id: string): void {
  if (!STATE_ID_PATTERN.test(id)) throw new Error(`${kind} must be 1-128 characters of [A-Za-z0-9_-], got ${JSON.stringify(id)}`);
}
