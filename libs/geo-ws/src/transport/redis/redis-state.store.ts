import type { Redis } from 'ioredis';
import { assertStateId, type GeoPresenceMember, type GeoSessionState, type GeoStateStore } from '../geo-state-store.interface.js';
import type { RedisKeys } from './redis-keys.js';

/**
 * Sessions and revocations as keys with a TTL; presence as a sorted set of member ids by
 * expiry plus a hash of their data, per room. Everything on the primary.
 */
export class RedisStateStore implements GeoStateStore {
  constructor(
    private readonly redis: () => Redis,
    private readonly keys: RedisKeys,
  ) {}

  async putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.redis().set(this.keys.session(sessionId), JSON.stringify(session), 'PX', ttlMs);
  }

  async getSession(sessionId: string): Promise<GeoSessionState | null> {
    assertStateId('sessionId', sessionId);
    const value = await this.redis().get(this.keys.session(sessionId));
    return value ? (JSON.parse(value) as GeoSessionState) : null;
  }

  async deleteSession(sessionId: string): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.redis().del(this.keys.session(sessionId));
  }

  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    assertStateId('tokenId', tokenId);
    const ttl = Math.max(1, expiresAt - Date.now());
    await this.redis().set(this.keys.revocation(tokenId), '1', 'PX', ttl);
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    assertStateId('tokenId', tokenId);
    return (await this.redis().exists(this.keys.revocation(tokenId))) === 1;
  }

  async touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void> {
    assertStateId('member id', member.id);
    const { expiries, members } = this.keys.presence(room);
    const now = Date.now();
    await this.redis()
      .multi()
      .zadd(expiries, now + ttlMs, member.id)
      .hset(members, member.id, JSON.stringify(member))
      .pexpire(expiries, ttlMs * 2)
      .pexpire(members, ttlMs * 2)
      .exec();
  }

  async removePresence(room: string, memberId: string): Promise<void> {
    assertStateId('member id', memberId);
    const { expiries, members } = this.keys.presence(room);
    await this.redis().multi().zrem(expiries, memberId).hdel(members, memberId).exec();
  }

  async presence(room: string): Promise<GeoPresenceMember[]> {
    const { expiries, members } = this.keys.presence(room);
    const now = Date.now();
    const stale = await this.redis().zrangebyscore(expiries, '-inf', now);
    if (stale.length > 0) await this.redis().multi().zrem(expiries, ...stale).hdel(members, ...stale).exec();
    const ids = await this.redis().zrangebyscore(expiries, now, '+inf');
    if (ids.length === 0) return [];
    const values = await this.redis().hmget(members, ...ids);
    return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as GeoPresenceMember);
  }
}
