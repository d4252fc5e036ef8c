import { assertStateId, type GeoPresenceMember, type GeoSessionState, type GeoStateStore } from '../geo-state-store.interface.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** The state store of the memory transport: shared by every region of one `MemoryNetwork`. */
export class MemoryStateStore implements GeoStateStore {
  private readonly sessions = new Map<string, Expiring<GeoSessionState>>();
  private readonly revocations = new Map<string, number>();
  private readonly rooms = new Map<string, Map<string, Expiring<GeoPresenceMember>>>();

  async putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    assertStateId('sessionId', sessionId);
    this.sessions.set(sessionId, { value: structuredClone(session), expiresAt: Date.now() + ttlMs });
  }

  async getSession(sessionId: string): Promise<GeoSessionState | null> {
    const entry = this.sessions.get(sessionId);
    if (!entry || entry.expiresAt <= Date.now()) {
      this.sessions.delete(sessionId);
      return null;
    }
    return structuredClone(entry.value);
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    assertStateId('tokenId', tokenId);
    this.revocations.set(tokenId, Math.max(expiresAt, this.revocations.get(tokenId) ?? 0));
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    const until = this.revocations.get(tokenId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.revocations.delete(tokenId);
    return false;
  }

  async touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void> {
    assertStateId('member id', member.id);
    const members = this.rooms.get(room) ?? new Map<string, Expiring<GeoPresenceMember>>();
    members.set(member.id, { value: { ...member }, expiresAt: Date.now() + ttlMs });
    this.rooms.set(room, members);
  }

  async removePresence(room: string, memberId: string): Promise<void> {
    this.rooms.get(room)?.delete(memberId);
  }

  async presence(room: string): Promise<GeoPresenceMember[]> {
    const members = this.rooms.get(room);
    if (!members) return [];
    const now = Date.now();
    for (const [id, entry] of members) if (entry.expiresAt <= now) members.delete(id);
    return [...members.values()].map((entry) => ({ ...entry.value }));
  }
}
