import type { KV, KvWatchEntry } from '@nats-io/kv';
import { assertStateId, type GeoPresenceMember, type GeoSessionState, type GeoStateStore } from '../geo-state-store.interface.js';
import type { GeoSubscription } from '../geo-transport.interface.js';
import { roomToken } from './nats-names.js';

/** How long a revocation watch that NATS ended waits before it watches again. */
const REWATCH_MS = 1000;

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

  /**
   * A watch of the revocations bucket, new entries only (an ordered consumer: NATS
   * redelivers from where it was after a reconnect, so nothing is skipped while it lasts).
   * If NATS ends the watch, it is opened again after {@link REWATCH_MS} and `onMissed`
   * follows, since entries may have come in between.
   */
  async watchRevocations(onRevoked: (tokenId: string) => void, onMissed?: () => void): Promise<GeoSubscription> {
    type Watch = AsyncIterable<KvWatchEntry> & { stop(): void };
    const open = (): Promise<Watch> => this.run(({ revocations }) => revocations.watch({ include: 'updates', ignoreDeletes: true }));
    const state: { closed: boolean; current: Watch } = { closed: false, current: await open() };
    const follow = async (watch: Watch): Promise<void> => {
      state.current = watch;
      try {
        for await (const entry of watch) {
          if (entry.operation !== 'PUT' || entry.length === 0) continue;
          const stored = entry.json<Expiring<boolean>>();
          if (stored.value && stored.expiresAt > Date.now()) onRevoked(entry.key);
        }
      } catch {
        // the watch failed: watched again below
      }
      // A function, not the field: close() may run during every await below.
      const closed = () => state.closed;
      while (!closed()) {
        await new Promise((resolve) => setTimeout(resolve, REWATCH_MS).unref());
        if (closed()) return;
        const again = await open().catch(() => undefined);
        if (!again) continue;
        if (closed()) return again.stop();
        onMissed?.();
        return follow(again);
      }
    };
    void follow(state.current);
    return {
      close: () => {
        state.closed = true;
        state.current.stop();
        return Promise.resolve();
      },
    };
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
