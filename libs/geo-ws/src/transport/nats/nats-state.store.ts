import type { KV } from '@nats-io/kv';
import { assertStateId, type GeoPresenceMember, type GeoSessionState, type GeoStateStore } from '../geo-state-store.interface.js';
import { roomToken } from './nats-names.js';

/** The KV buckets the store works on, available once the transport is connected. */
export interface NatsStateBuckets {
  sessions: KV;
  revocations: KV;
  presence: KV;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/**
 * Sessions, revocations and presence in NATS KV buckets. NATS 2.9 expires entries per
 * bucket, not per key, so each value carries its own `expiresAt`, checked on read; the
 * bucket age only collects garbage.
 */
export class NatsStateStore implements GeoStateStore {
  constructor(
    private readonly buckets: () => NatsStateBuckets,
    /** Maps a failed KV request to the error to reject with (unavailable when retryable). */
    private readonly toError: (error: unknown) => Error,
  ) {}

  async putSession(sessionId: string, session: GeoSessionState, ttlMs: number): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.run(({ sessions }) => sessions.put(sessionId, encode({ value: session, expiresAt: Date.now() + ttlMs })));
  }

  async getSession(sessionId: string): Promise<GeoSessionState | null> {
    assertStateId('sessionId', sessionId);
    return (await this.run(({ sessions }) => read<GeoSessionState>(sessions, sessionId))) ?? null;
  }

  async deleteSession(sessionId: string): Promise<void> {
    assertStateId('sessionId', sessionId);
    await this.run(({ sessions }) => sessions.delete(sessionId));
  }

  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    assertStateId('tokenId', tokenId);
    await this.run(({ revocations }) => revocations.put(tokenId, encode({ value: true, expiresAt })));
  }

  async isRevoked(tokenId: string): Promise<boolean> {
    assertStateId('tokenId', tokenId);
    return (await this.run(({ revocations }) => read<boolean>(revocations, tokenId))) === true;
  }

  async touchPresence(room: string, member: GeoPresenceMember, ttlMs: number): Promise<void> {
    assertStateId('member id', member.id);
    await this.run(({ presence }) =>
      presence.put(`${roomToken(room)}.${member.id}`, encode({ value: member, expiresAt: Date.now() + ttlMs })),
    );
  }

  async removePresence(room: string, memberId: string): Promise<void> {
    assertStateId('member id', memberId);
    await this.run(({ presence }) => presence.delete(`${roomToken(room)}.${memberId}`));
  }

  presence(room: string): Promise<GeoPresenceMember[]> {
    return this.run(async ({ presence: bucket }) => {
      const keys: string[] = [];
      for await (const key of await bucket.keys(`${roomToken(room)}.*`)) keys.push(key);
      const members = await Promise.all(keys.map((key) => read<GeoPresenceMember>(bucket, key)));
      return members.filter((member): member is GeoPresenceMember => member !== undefined);
    });
  }

  /** Runs KV requests on the buckets; a failure rejects with the transport's error for it. */
  private async run<T>(requests: (buckets: NatsStateBuckets) => Promise<T>): Promise<T> {
    try {
      return await requests(this.buckets());
    } catch (error) {
      throw this.toError(error);
    }
  }
}

function encode<T>(entry: Expiring<T>): string {
  return JSON.stringify(entry);
}

/** The live value of a key, or undefined when absent, deleted or past its own expiry. */
async function read<T>(bucket: KV, key: string): Promise<T | undefined> {
  const entry = await bucket.get(key);
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
  const stored = entry.json<Expiring<T>>();
  return stored.expiresAt > Date.now() ? stored.value : undefined;
}
