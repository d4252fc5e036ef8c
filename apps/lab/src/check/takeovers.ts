import type { PublishLog } from '../load/load.types.js';
import type { LatencyStats } from './check.types.js';
import { mergedStats } from './checker.js';

/** A run that killed a region with its brokers (`region-down --brokers`): the rooms its survivors took over. */
export interface TakeoverCheck {
  /** Seconds after publishing started. */
  killAtS: number;
  /** Rooms whose home term went up during the run (taken over: nothing else moves them in this scenario). */
  rooms: string[];
  /** Per taken-over room: ms from the kill until its first publish acked after it. */
  writableAfter: LatencyStats;
  /** Taken-over rooms with no publish acked after the kill. */
  neverWritable: number;
}

export interface TakeoverCheckInput {
  /** `Date.now()` of the kill. */
  killedAt: number;
  killAtS: number;
  publishes: PublishLog[];
  /** Each room's home term at the end (geo). */
  terms: Record<string, number> | undefined;
}

/**
 * The rooms the surviving regions took over (term above 1 at the end) and how long after the
 * kill each accepted its first append again (its first publish acked after the kill).
 */
export function checkTakeovers({ killedAt, killAtS, publishes, terms }: TakeoverCheckInput): TakeoverCheck {
  const rooms = Object.entries(terms ?? {})
    .filter(([, term]) => term > 1)
    .map(([room]) => room)
    .sort();
  const taken = new Set(rooms);
  const firstAck = new Map<string, number>();
  for (const publish of publishes) {
    if (!taken.has(publish.room) || publish.ackedAt === undefined || publish.ackedAt < killedAt) continue;
    const known = firstAck.get(publish.room);
    if (known === undefined || publish.ackedAt < known) firstAck.set(publish.room, publish.ackedAt);
  }
  const after = Float64Array.from([...firstAck.values()].map((at) => at - killedAt)).sort();
  return { killAtS, rooms, writableAfter: mergedStats([after]), neverWritable: rooms.length - firstAck.size };
}
