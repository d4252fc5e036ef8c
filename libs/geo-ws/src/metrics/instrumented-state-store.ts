import type { GeoPresenceMember, GeoSessionState, GeoStateStore } from '../transport/geo-state-store.interface.js';
import type { GeoMetrics, GeoStateOperation } from './geo-metrics.js';

/**
 * The transport's state store, counting each operation by outcome
 * (`geows_state_operations_total`). Sessions and presence write on membership changes
 * and heartbeats, never per event, so counting them costs nothing on the hot path.
 */
export function instrumentStateStore(store: GeoStateStore, metrics: GeoMetrics): GeoStateStore {
  const count = async <T>(operation: GeoStateOperation, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      metrics.stateOperation(operation, true);
      return result;
    } catch (error) {
      metrics.stateOperation(operation, false);
      throw error;
    }
  };
  return {
    putSession: (id: string, session: GeoSessionState, ttlMs: number) => count('putSession', () => store.putSession(id, session, ttlMs)),
    getSession: (id: string) => count('getSession', () => store.getSession(id)),
    deleteSession: (id: string) => count('deleteSession', () => store.deleteSession(id)),
    revoke: (tokenId: string, expiresAt: number) => count('revoke', () => store.revoke(tokenId, expiresAt)),
    isRevoked: (tokenId: string) => count('isRevoked', () => store.isRevoked(tokenId)),
    // Once per server, not an operation per request: not counted.
    watchRevocations: (onRevoked: (tokenId: string) => void, onMissed?: () => void) => store.watchRevocations(onRevoked, onMissed),
    touchPresence: (room: string, member: GeoPresenceMember, ttlMs: number) =>
      count('touchPresence', () => store.touchPresence(room, member, ttlMs)),
    removePresence: (room: string, memberId: string) => count('removePresence', () => store.removePresence(room, memberId)),
    presence: (room: string) => count('presence', () => store.presence(room)),
  };
}
