import type { Redis } from 'ioredis';
import {
  assertStateId,
  STATE_ID_PATTERN,
  type GeoPresenceMember,
  type GeoSessionState,
  type GeoStateStore,
} from '../geo-state-store.interface.js';
import type { GeoSubscription } from '../geo-transport.interface.js';
import { unavailable } from './redis-errors.js';
import type { RedisKeys } from './redis-keys.js';

/**
 * Sessions and revocations as keys with a TTL; presence as a sorted set of member ids by
 * expiry plus a hash of their data, per room. Everything on the primary; a request that
 * cannot reach it rejects with `GeoTransportUnavailableError`. Revocations are announced on
 * a Pub/Sub channel, heard on the transport's subscriber connection.
 */
export class RedisStateStore implements GeoStateStore {
  constructor(
    private readonly primary: () => Redis,
    private readonly keys: RedisKeys,
    /** The transport's Pub/Sub connection (ioredis subscribes it again after a reconnect). */
    private readonly subscriber: () => Redis,
  ) {}

  async putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.run((redis) => redis.set(this.keys.session(sessionId), JSON.stringify(session), 'PX', ttlMs));
  }

  async getSession(sessionId: string): Promise<GeoSessionState | null> {
    assertStateId('sessionId', sessionId);
    const value = await this.run((redis) => redis.get(this.keys.session(sessionId)));
    return value ? (JSON.parse(value) as GeoSessionState) : null;
  }

  async deleteSession(sessionId: string): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.run((redis) => redis.del(this.keys.session(sessionId)));
  }

  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    assertStateId('tokenId', tokenId);
    const ttl = Math.max(1, expiresAt - Date.now());
    await this.run(async (redis) => {
      await redis.set(this.keys.revocation(tokenId), '1', 'PX', ttl);
      // After the key: whoever hears it and reads the key finds it.
      await redis.publish(this.keys.revocations(), tokenId);
    });
  }

  /**
   * Pub/Sub is at-most-once: what is published while the subscriber is disconnected is
   * lost. ioredis subscribes again when it is back; `onMissed` follows once that
   * subscription is in place (a PING behind it answered), so a revocation is either heard
   * or already stored when the caller reads again.
   */
  async watchRevocations(onRevoked: (tokenId: string) => void, onMissed?: () => void): Promise<GeoSubscription> {
    const channel = this.keys.revocations();
    let connection: Redis;
    try {
      connection = this.subscriber();
    } catch (error) {
      throw unavailable(error);
    }
    const onMessage = (from: string, message: string): void => {
      if (from === channel && STATE_ID_PATTERN.test(message)) onRevoked(message);
    };
    // 'ready' is emitted before ioredis sends the new SUBSCRIBE: ping behind it, in a microtask.
    const onReady = (): void =>
      queueMicrotask(() => {
        connection.ping().then(
          () => onMissed?.(),
          () => undefined, // down again: the next 'ready' tells
        );
      });
    connection.on('message', onMessage);
    try {
      await connection.subscribe(channel);
    } catch (error) {
      connection.off('message', onMessage);
      throw unavailable(error);
    }
    connection.on('ready', onReady);
    let closed = false;
    return {
      close: async () => {
        if (closed) return;
        closed = true;
        connection.off('message', onMessage);
        connection.off('ready', onReady);
        await connection.unsubscribe(channel).catch(() => undefined);
      },
    };
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    assertStateId('tokenId', tokenId);
    return (await this.run((redis) => redis.exists(this.keys.revocation(tokenId)))) === 1;
  }

  async touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void> {
    assertStateId('member id', member.id);
    const { expiries, members } = this.keys.presence(room);
    const now = Date.now();
    await this.run((redis) =>
      redis
        .multi()
        .zadd(expiries, now + ttlMs, member.id)
        .hset(members, member.id, JSON.stringify(member))
        .pexpire(expiries, ttlMs * 2)
        .pexpire(members, ttlMs * 2)
        .exec(),
    );
  }

  async removePresence(room: string, memberId: string): Promise<void> {
    assertStateId('member id', memberId);
    const { expiries, members } = this.keys.presence(room);
    await this.run((redis) => redis.multi().zrem(expiries, memberId).hdel(members, memberId).exec());
  }

  presence(room: string): Promise<GeoPresenceMember[]> {
    const { expiries, members } = this.keys.presence(room);
    return this.run(async (redis) => {
      const now = Date.now();
      const stale = await redis.zrangebyscore(expiries, '-inf', now);
      if (stale.length > 0)
        await redis
          .multi()
          .zrem(expiries, ...stale)
          .hdel(members, ...stale)
          .exec();
      const ids = await redis.zrangebyscore(expiries, now, '+inf');
      if (ids.length === 0) return [];
      const values = await redis.hmget(members, ...ids);
      return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as GeoPresenceMember);
    });
  }

  /** Runs requests on the primary; a failure rejects with `unavailable`'s error for it. */
  private async run<T>(requests: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await requests(this.primary());
    } catch (error) {
      throw unavailable(error);
    }
  }
}
