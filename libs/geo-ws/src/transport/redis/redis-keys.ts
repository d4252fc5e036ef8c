import { GeoConfigError } from '../../errors/geo-config.error.js';
import type { GeoLogRef } from '../log-ref.js';

/** Room ids in keys: base64url, so `:`, `{`, `}`, `*` or anything else cannot reach another key. */
function encode(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

/**
 * Every key of one namespace. A log's keys share one hash tag (`{…}`), so in Redis
 * Cluster they live in one slot and the append script can touch them atomically.
 */
export class RedisKeys {
  constructor(readonly namespace: string) {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(namespace)) {
      throw new GeoConfigError(
        `redisTransport: namespace must be 1-32 lower-case letters, digits, "_" or "-", starting with a letter or digit; got ${JSON.stringify(namespace)}`,
      );
    }
  }

  private tag(log: GeoLogRef): string {
    const room = encode(log.room);
    return log.scope === 'global' ? `{${this.namespace}:g:${room}}` : `{${this.namespace}:r:${log.region}:${room}}`;
  }

  /** The Stream holding the log's events; entry ids are `<seq>-0`. */
  stream(log: GeoLogRef): string {
    return `geows:${this.tag(log)}:log`;
  }

  /** Hash `{ epoch, seq }`: the incarnation and the last assigned seq. */
  meta(log: GeoLogRef): string {
    return `geows:${this.tag(log)}:meta`;
  }

  /** Dedup key of one event id (G1). */
  eventId(log: GeoLogRef, eventId: string): string {
    return `geows:${this.tag(log)}:id:${eventId}`;
  }

  /** Pattern of every dedup key of a log (for deleteLog). */
  eventIdPattern(log: GeoLogRef): string {
    return `geows:${this.tag(log)}:id:*`.replace(/[{}[\]]/g, (char) => `\\${char}`);
  }

  /** Pub/Sub channel announcing new entries of a stream (Cluster mode's live reader). */
  wake(streamKey: string): string {
    return `${streamKey}:wake`;
  }

  /** Pub/Sub channel of the log's ephemeral events. */
  ephemeral(log: GeoLogRef): string {
    return `geows:${this.tag(log)}:eph`;
  }

  /** Pub/Sub channel announcing deleted logs (the message is the log's stream key). */
  resets(): string {
    return `geows:${this.namespace}:resets`;
  }

  /**
   * Hash of the dataset the primary serves: its id (the second part of every epoch), its
   * write count, and the replication id it was last checked under (see `VALIDATE_SCRIPT`).
   * One per namespace; in Cluster mode it only counts resets.
   */
  dataset(): string {
    return `geows:${this.namespace}:dataset`;
  }

  session(id: string): string {
    return `geows:${this.namespace}:session:${id}`;
  }

  revocation(id: string): string {
    return `geows:${this.namespace}:revoked:${id}`;
  }

  /** Pub/Sub channel announcing revocations (the message is the token id). */
  revocations(): string {
    return `geows:${this.namespace}:revocations`;
  }

  /** Sorted set of member ids by expiry, and the hash of their data, per room. */
  presence(room: string): { expiries: string; members: string } {
    const tag = `{${this.namespace}:p:${encode(room)}}`;
    return { expiries: `geows:${tag}:expiries`, members: `geows:${tag}:members` };
  }
}
