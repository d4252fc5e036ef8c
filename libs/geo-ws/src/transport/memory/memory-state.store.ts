import { assertStateId, type GeoPresenceMember, type GeoSessionState, type GeoStateStore } from '../geo-state-store.interface.js';
import type { GeoSubscription } from '../geo-transport.interface.js';
import { settle } from './settle.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** The state store of the memory transport: shared by every region of one `GeoMemoryNetwork`. */
export class MemoryStateStore implements GeoStateStore {
  private readonly sessions = new Map<string, Expiring<GeoSessionState>>();
  private readonly revocations = new Map<string, number>();
  private readonly rooms = new Map<string, Map<string, Expiring<GeoPresenceMember>>>();
  /** Every region's revocation watchers: one process, so nothing is ever missed. */
  private readonly revocationWatchers = new Set<(tokenId: string) => void>();

  putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    return settle(() => {
      assertStateId('sessionId', sessionId);
      this.sessions.set(sessionId, { value: structuredClone(session), expiresAt: Date.now() + ttlMs });
    });
  }

  getSession(sessionId: string): Promise<GeoSessionState | null> {
    return settle(() => {
      const entry = this.sessions.get(sessionId);
      if (!entry || entry.expiresAt <= Date.now()) {
        this.sessions.delete(sessionId);
        return null;
      }
      return structuredClone(entry.value);
    });
  }

  deleteSession(sessionId: string): Promise<void> {
    return settle(() => {
      this.sessions.delete(sessionId);
    });
  }

  revoke(tokenId: string, expiresAt: number): Promise<void> {
    return settle(() => {
      assertStateId('tokenId', tokenId);
      this.revocations.set(tokenId, Math.max(expiresAt, this.revocations.get(tokenId) ?? 0));
      for (const watcher of this.revocationWatchers) {
        try {
          watcher(tokenId);
        } catch {
          // one watcher's failure is its own: the revocation stands, the others hear it
        }
      }
    });
  }

  watchRevocations(onRevoked: (tokenId: string) => void): Promise<GeoSubscription> {
    return settle(() => {
      const watcher = (tokenId: string) => onRevoked(tokenId);
      this.revocationWatchers.add(watcher);
      return {
        close: () => {
          this.revocationWatchers.delete(watcher);
          return Promise.resolve();
        },
      };
    });
  }

  isRevoked(tokenId: string): Promise<boolean> {
    return settle(() => {
      const until = this.revocations.get(tokenId);
      if (until === undefined) return false;
      if (until > Date.now()) return true;
      this.revocations.delete(tokenId);
      return false;
    });
  }

  touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void> {
    return settle(() => {
      assertStateId('member id', member.id);
      const members = this.rooms.get(room) ?? new Map<string, Expiring<GeoPresenceMember>>();
      members.set(member.id, { value: { ...member }, expiresAt: Date.now() + ttlMs });
      this.rooms.set(room, members);
    });
  }

  removePresence(room: string, memberId: string): Promise<void> {
    return settle(() => {
      this.rooms.get(room)?.delete(memberId);
    });
  }

  presence(room: string): Promise<GeoPresenceMember[]> {
    return settle(() => {
      const members = this.rooms.get(room);
      if (!members) return [];
      const now = Date.now();
      for (const [id, entry] of members) if (entry.expiresAt <= now) members.delete(id);
      return [...members.values()].map((entry) => ({ ...entry.value }));
    });
  }
}
