/** Buckets per window: the window slides by a sixth of it. */
const BUCKETS = 6;
/** Fewer events than this over a window say nothing about where a room's traffic is. */
export const MIN_EVENTS_TO_MOVE = 10;

/** One room's event counts per region, over the last window, in buckets. */
interface RoomCounts {
  /** Per bucket: its start and the count per region. */
  buckets: { startsAt: number; byRegion: Map<string, number> }[];
  /** Since when the room may move (its last move, or when counting began, plus a window): the hysteresis. */
  settledAt: number;
}

/** Where a room's events came from over the last window, and whether the room should move. */
export interface TrafficVerdict {
  /** The region with the largest share, if it passes the threshold; undefined: stay. */
  moveTo: string | undefined;
  total: number;
  share: number;
}

/**
 * Counts each followed room's events by the region that published them (the envelope's
 * `region`), over a sliding window. A room should move to a region once more than `share`
 * of at least {@link MIN_EVENTS_TO_MOVE} events of the last window came from there. With
 * `share` above one half, only one region can qualify at a time, and a room stays at least
 * one window where it moved (counting starts again there), so it never flaps.
 *
 * Bounded: at most `maxRooms` rooms are counted (the least recently active give way), and a
 * room with no event over a window is dropped.
 */
export class RoomTraffic {
  private readonly rooms = new Map<string, RoomCounts>();

  constructor(
    private readonly windowMs: number,
    private readonly share: number,
    private readonly maxRooms = 10_000,
  ) {}

  record(room: string, region: string, now = Date.now()): void {
    let counts = this.rooms.get(room);
    if (counts) {
      this.rooms.delete(room); // re-inserted last: the map's order is recency
    } else {
      if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value as string);
      counts = { buckets: [], settledAt: now + this.windowMs };
    }
    this.rooms.set(room, counts);
    const size = this.windowMs / BUCKETS;
    let bucket = counts.buckets.at(-1);
    if (!bucket || now - bucket.startsAt >= size) {
      bucket = { startsAt: now - ((now - (bucket?.startsAt ?? now)) % size), byRegion: new Map() };
      counts.buckets.push(bucket);
    }
    bucket.byRegion.set(region, (bucket.byRegion.get(region) ?? 0) + 1);
    this.expire(counts, now);
  }

  /** Whether `room`, homed in `home`, should move, and where. */
  verdict(room: string, home: string | null, now = Date.now()): TrafficVerdict {
    const counts = this.rooms.get(room);
    if (!counts) return { moveTo: undefined, total: 0, share: 0 };
    this.expire(counts, now);
    const byRegion = new Map<string, number>();
    let total = 0;
    for (const bucket of counts.buckets) {
      for (const [region, count] of bucket.byRegion) {
        byRegion.set(region, (byRegion.get(region) ?? 0) + count);
        total += count;
      }
    }
    let top: string | undefined;
    let topCount = 0;
    for (const [region, count] of byRegion) {
      if (count > topCount) [top, topCount] = [region, count];
    }
    const share = total === 0 ? 0 : topCount / total;
    const moves = top !== undefined && top !== home && total >= MIN_EVENTS_TO_MOVE && share > this.share && now >= counts.settledAt;
    return { moveTo: moves ? top : undefined, total, share };
  }

  /** The room moved: its counts start again, and it stays at least a window. */
  moved(room: string, now = Date.now()): void {
    this.rooms.set(room, { buckets: [], settledAt: now + this.windowMs });
  }

  get size(): number {
    return this.rooms.size;
  }

  /** Drops buckets older than the window; a room left with none is forgotten. */
  private expire(counts: RoomCounts, now: number): void {
    while (counts.buckets.length > 0 && now - counts.buckets[0].startsAt >= this.windowMs) counts.buckets.shift();
  }

  /** Forgets rooms with no event over the last window (a timer calls it). */
  sweep(now = Date.now()): void {
    for (const [room, counts] of this.rooms) {
      this.expire(counts, now);
      if (counts.buckets.length === 0 && now >= counts.settledAt) this.rooms.delete(room);
    }
  }
}
