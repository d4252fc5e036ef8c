// Consistency as the client sees it: every room-log event is checked against what the
// client already delivered from that log (docs/CLIENT.md, "Consistency").
import type { AnomalyKind } from '../geo-client-events.js';

/** Counts since the client was created (`client.consistency`); never reset. */
export interface ConsistencyCounts {
  /** Room-log events delivered to the room's handlers (live and replayed; not ephemeral ones). */
  readonly events: number;
  /** Events dropped as duplicates. */
  readonly duplicates: number;
  /** Events dropped as regressions. */
  readonly regressions: number;
  /** Skipped seqs seen, one per jump (the jump's size is not counted). */
  readonly gaps: number;
}

/**
 * How many `event_id`s per log the duplicate check remembers: the last ones delivered,
 * as 53-bit hashes (1 KB per busy log; measured: apps/lab/src/bench/sdk-delivery.ts).
 */
export const RECENT_IDS_PER_LOG = 128;

/** The shortest report interval the client accepts from `geo.welcome`'s `report_ms` (a shorter one is raised to it). */
export const MIN_REPORT_MS = 100;

/**
 * The last {@link RECENT_IDS_PER_LOG} `event_id`s delivered from one log, kept as 53-bit
 * hashes in a ring: a fixed 1 KB, allocated at the first id, instead of the strings
 * themselves (about 15 KB per log). Two ids share a hash with a chance of about 1 in 2^46
 * per event over a full ring, so a fresh event is as good as never taken for a duplicate.
 */
export class RecentIds {
  private ring: Float64Array | undefined;
  private filled = 0;
  private next = 0;

  constructor(readonly capacity = RECENT_IDS_PER_LOG) {}

  has(id: string): boolean {
    const { ring } = this;
    if (!ring) return false;
    const hash = hash53(id);
    for (let i = 0; i < this.filled; i++) if (ring[i] === hash) return true;
    return false;
  }

  /** Adds an id not already held, forgetting the oldest when full. */
  add(id: string): void {
    this.ring ??= new Float64Array(this.capacity);
    this.ring[this.next] = hash53(id);
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
  }

  clear(): void {
    this.filled = 0;
    this.next = 0;
  }

  get size(): number {
    return this.filled;
  }
}

/**
 * A 53-bit hash of a string (two 32-bit multiply-xorshift lanes, cyrb53's scheme): exact
 * in a double, so a `Float64Array` holds it.
 */
function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** What the check decides for one event. */
export interface Verdict {
  /** Hand it to the room's handlers. */
  deliver: boolean;
  /** Counted and reported, if anything was wrong. */
  anomaly?: AnomalyKind;
}

const DELIVER: Verdict = Object.freeze({ deliver: true });
const DROP: Verdict = Object.freeze({ deliver: false });

/**
 * The check of one log (a room's global log, or its regional one) across the client's
 * connections. It knows what each `geo.join` asked for, so the replay that follows a
 * (re)join, which may repeat events the client already has when it joins again on the same
 * connection, is not taken for duplicates; and a `recovered: false` or a new epoch is not a
 * gap (the SDK's `gap` event says so).
 */
export class LogCheck {
  /** `event_id`s delivered in this epoch (the last {@link RECENT_IDS_PER_LOG}). */
  private readonly ids = new RecentIds();
  private epoch: string | undefined;
  /** The lowest `since` of the joins sent on this connection and not answered yet (Infinity: live only). */
  private asked = Infinity;
  private joinsUnanswered = 0;
  /** The highest seq received since the last `geo.joined` (or where its replay starts): the server sends each log strictly increasing. */
  private last: number | undefined;
  /** `geo.joined` said the log numbers seqs without gaps. */
  private contiguous = false;
  /** The next event may follow a gap the server announced (`recovered: false`). */
  private gapAnnounced = false;

  /** A `geo.join` is sent for this log, from `since` (undefined: live only). */
  joining(since: number | undefined): void {
    this.asked = Math.min(this.asked, since ?? Infinity);
    this.joinsUnanswered++;
  }

  /** The connection ended: its joins will not be answered. */
  disconnected(): void {
    this.asked = Infinity;
    this.joinsUnanswered = 0;
    this.last = undefined;
  }

  /** `geo.joined` for this log: a new stream of events starts. */
  joined(frame: { seq: number; epoch: string; recovered: boolean; contiguous?: boolean }): void {
    if (this.epoch !== frame.epoch) this.ids.clear();
    this.epoch = frame.epoch;
    this.contiguous = frame.contiguous === true;
    this.gapAnnounced = !frame.recovered;
    // Recovered: the replay starts after what the join asked for (after seq for a live join).
    // Not recovered: after whatever retention kept, or the new epoch's first event.
    this.last = frame.recovered ? Math.min(this.asked, frame.seq) : undefined;
    if (--this.joinsUnanswered <= 0) {
      this.joinsUnanswered = 0;
      this.asked = Infinity;
    }
  }

  /**
   * One event of the log at `seq`, the client having delivered up to `delivered` (-1:
   * nothing yet): delivered or dropped, and what was wrong with it.
   */
  check(seq: number, eventId: string, delivered: number): Verdict {
    if (this.last !== undefined && seq <= this.last) return { deliver: false, anomaly: this.ids.has(eventId) ? 'duplicate' : 'regression' };
    this.last = seq;
    // Replayed after a join that asked from further back: the client has it already.
    if (seq <= delivered) return DROP;
    if (this.ids.has(eventId)) return { deliver: false, anomaly: 'duplicate' };
    this.ids.add(eventId);
    const announced = this.gapAnnounced;
    this.gapAnnounced = false;
    if (this.contiguous && !announced && delivered >= 0 && seq > delivered + 1) return { deliver: true, anomaly: 'gap' };
    return DELIVER;
  }
}

/** The client's counts, and the deltas of `geo.report`. */
export class ConsistencyCounter {
  private counts = { events: 0, duplicates: 0, regressions: 0, gaps: 0 };
  private reported = { ...this.counts };

  /** A copy: `client.consistency`. */
  get snapshot(): ConsistencyCounts {
    return { ...this.counts };
  }

  delivered(): void {
    this.counts.events++;
  }

  anomaly(kind: AnomalyKind): void {
    if (kind === 'duplicate') this.counts.duplicates++;
    else if (kind === 'regression') this.counts.regressions++;
    else this.counts.gaps++;
  }

  /** What happened since the last report, or `undefined` when nothing did (no frame is sent then). */
  peekReport(): ConsistencyCounts | undefined {
    const { counts, reported } = this;
    const delta = {
      events: counts.events - reported.events,
      duplicates: counts.duplicates - reported.duplicates,
      regressions: counts.regressions - reported.regressions,
      gaps: counts.gaps - reported.gaps,
    };
    return delta.events + delta.duplicates + delta.regressions + delta.gaps === 0 ? undefined : delta;
  }

  /** The report from {@link peekReport} was sent. */
  markReported(): void {
    this.reported = { ...this.counts };
  }
}

/** The report interval `geo.welcome` asks for, or `undefined` when it asks for none (or for nothing usable). */
export function reportInterval(reportMs: unknown): number | undefined {
  if (typeof reportMs !== 'number' || !Number.isFinite(reportMs) || reportMs <= 0) return undefined;
  return Math.min(Math.max(MIN_REPORT_MS, Math.floor(reportMs)), 2 ** 31 - 1);
}
