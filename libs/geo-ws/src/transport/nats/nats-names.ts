import { GeoConfigError } from '../../errors/geo-config.error.js';
import type { GeoLogRef } from '../log-ref.js';

/**
 * One stretch of a room's log in one home stream: the events its home appended under one
 * fencing term. A move seals it (a marker at `sealSeq` in the stream) and starts the next.
 */
export interface NatsSegment {
  region: string;
  /** The fencing term the segment was written under: its events are the room's subject for that term. */
  term: number;
  /** The home stream's creation time (base 36) when the segment began. */
  incarnation: string;
  /** The home stream's last sequence when the segment began: all its events come after it. */
  startSeq: number;
  /** Past segments only: the stream sequence of the seal marker; the segment's events come before it. */
  sealSeq?: number;
}

/** A room's home as the homes bucket records it (see {@link NatsHomes}). */
export interface NatsRoomHome extends NatsSegment {
  /** Fencing term: 1 for the first placement, one more per move. */
  term: number;
  /** Goes up when the home stream was found created again (its store lost): part of the room's epoch. */
  generation: number;
  /** The home stream's creation time (base 36) when this generation began. */
  incarnation: string;
  /**
   * The home stream's last sequence when the room was placed: every event of the room comes
   * after it, so a position at or below it (a member who joined the empty room) is "before
   * the room's first event", whatever the stream removed of other rooms' events.
   */
  startSeq: number;
  /**
   * Set while a move to `to` is under way (see {@link NatsHomes.move}): appends still go to
   * the current home, but each is confirmed against the seal the move will write.
   */
  moving?: { to: string; since: number };
  /**
   * Set by a takeover (`Date.now()` before its compare-and-set): appends to this home wait
   * until a lease after it, when the lost home can no longer take an ack as final.
   */
  takenOverAt?: number;
  /** Earlier segments of the room (the last few, oldest first), for reads from positions before a move. */
  past?: NatsSegment[];
}

/**
 * A log with where it lives: a global room with a home carries its record, and its events
 * are in its home region's stream; every other log is where {@link NatsNames} puts it
 * without one (regional logs, and every global log without `roomHomes`).
 */
export type NatsLogRef = GeoLogRef & { readonly home?: NatsRoomHome };

/**
 * Room ids become one subject token in base64url, so `.`, `*`, `>`, spaces or anything
 * else in a room id can never add a token or widen a subscription.
 */
export function roomToken(room: string): string {
  return Buffer.from(room, 'utf8').toString('base64url');
}

/**
 * A homed room's subject token for a term: the room token alone for the first term (the
 * names before moves existed), then `<token>~<term>`, one subject per segment, so each
 * segment's bounds are its subject's. `~` is not in base64url, so no room collides.
 */
function segmentToken(token: string, term: number): string {
  // Read back by `termOfSubject` (nats-segments.ts).
  return term <= 1 ? token : `${token}~${term}`;
}

/** Names of every NATS resource of one namespace. */
export class NatsNames {
  readonly globalStream: string;
  readonly kv: { epochs: string; homes: string; sessions: string; revocations: string; presence: string };
  private readonly prefix: string;

  constructor(readonly namespace: string) {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(namespace)) {
      throw new GeoConfigError(
        `natsTransport: namespace must be 1-32 lower-case letters, digits, "_" or "-", starting with a letter or digit; got ${JSON.stringify(namespace)}`,
      );
    }
    this.prefix = `geows.${namespace}`;
    this.globalStream = `GEOWS_${namespace.toUpperCase()}`;
    const bucket = (name: string) => `geows_${namespace}_${name}`;
    this.kv = {
      epochs: bucket('epochs'),
      homes: bucket('homes'),
      sessions: bucket('sessions'),
      revocations: bucket('revocations'),
      presence: bucket('presence'),
    };
  }

  regionalStream(region: string): string {
    return `${this.globalStream}_R_${region.toUpperCase()}`;
  }

  /** The stream of the global rooms homed in `region` (`roomHomes`). */
  homeStream(region: string): string {
    return `${this.globalStream}_H_${region.toUpperCase()}`;
  }

  /** The copy of `home`'s home stream kept in region `at`'s cluster (see `mirrors` in the options). */
  mirrorStream(home: string, at: string): string {
    return `${this.globalStream}_M_${home.toUpperCase()}_${at.toUpperCase()}`;
  }

  homeSubjects(region: string): string {
    return `${this.prefix}.h.${region}.*`;
  }

  /** The stream holding `log`. */
  stream(log: NatsLogRef): string {
    if (log.home) return this.homeStream(log.home.region);
    return log.scope === 'global' ? this.globalStream : this.regionalStream(log.region);
  }

  /** Subjects captured by a stream: one token per room. */
  globalSubjects(): string {
    return `${this.prefix}.g.*`;
  }

  regionalSubjects(region: string): string {
    return `${this.prefix}.r.${region}.*`;
  }

  /** Every room subject of the stream holding `log`. */
  streamSubjects(log: NatsLogRef): string {
    if (log.home) return this.homeSubjects(log.home.region);
    return log.scope === 'global' ? this.globalSubjects() : this.regionalSubjects(log.region);
  }

  /** The subject of one room log (for a homed room: of its segment `log.home`). */
  subject(log: NatsLogRef): string {
    const token = roomToken(log.room);
    if (log.home) return `${this.prefix}.h.${log.home.region}.${segmentToken(token, log.home.term)}`;
    return log.scope === 'global' ? `${this.prefix}.g.${token}` : `${this.prefix}.r.${log.region}.${token}`;
  }

  /**
   * Where a move leaves, in the new home's stream, one marker per event of the last dedup
   * window (`Nats-Msg-Id` of the event, its position in a header), so an `event_id` retried
   * after the move is answered as a duplicate with its original position.
   */
  aliasSubject(log: NatsLogRef & { home: NatsRoomHome }): string {
    return `${this.subject(log)}~a`;
  }

  /** Core (not stored) subject for ephemeral events of a log. */
  ephemeralSubject(log: GeoLogRef): string {
    const token = roomToken(log.room);
    return log.scope === 'global' ? `${this.prefix}.e.g.${token}` : `${this.prefix}.e.r.${log.region}.${token}`;
  }

  /** KV key of a log (epochs bucket). */
  logKey(log: GeoLogRef): string {
    const token = roomToken(log.room);
    return log.scope === 'global' ? `g.${token}` : `r.${log.region}.${token}`;
  }
}
