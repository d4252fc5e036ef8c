import type { ClientLog, PublishLog } from '../load/load.types.js';
import type { LatencyStats } from './check.types.js';
import { mergedStats } from './checker.js';

/** What the check needs of a publisher shift (`PublisherShift` in scenarios/scenario.ts). */
export interface ShiftPlan {
  atS: number;
  duringS: number;
  rooms: { room: string; from: string; to: string }[];
}

/** Send to first arrival of a set of events: while the publishers moved, and over the whole run. */
export interface ShiftLatency {
  /** Events published in [atS, atS + duringS]. */
  during: LatencyStats;
  whole: LatencyStats;
}

export interface RoomShiftFigures extends ShiftLatency {
  room: string;
  /** Where its publishers lived before the shift, and after. */
  from: string;
  to: string;
}

/** Publishes by the region their publisher was connected to: whether the shift happened. */
export interface RegionPublishes {
  region: string;
  before: number;
  after: number;
}

/** A run's figures around its publisher shift: every shifted room's latency during the move beside the whole run's. */
export interface PublisherShiftCheck extends ShiftLatency {
  /** Seconds after publishing started. */
  atS: number;
  duringS: number;
  rooms: RoomShiftFigures[];
  publishesByRegion: RegionPublishes[];
}

export interface ShiftCheckInput {
  shift: ShiftPlan;
  publishes: PublishLog[];
  clients: ClientLog[];
  /** Publishing start (`Date.now()`), the zero of `atS`. */
  startedAt: number;
}

/** Latencies of one room's first deliveries, split as {@link ShiftLatency}. */
interface RoomLatencies {
  during: number[];
  whole: number[];
}

/**
 * Latency of each shifted room's events (every client's first delivery of each, as the
 * checker counts them), for those published during the move and for the whole run, and
 * the publishes per publisher region before and after the shift.
 */
export function checkPublisherShift({ shift, publishes, clients, startedAt }: ShiftCheckInput): PublisherShiftCheck {
  const movedAt = startedAt + shift.atS * 1000;
  const duringEnd = movedAt + shift.duringS * 1000;
  const sentAt = firstSendTimes(publishes);
  const byRoom = new Map<string, RoomLatencies>(shift.rooms.map(({ room }) => [room, { during: [], whole: [] }]));
  for (const client of clients) {
    for (const log of client.rooms) {
      const latencies = byRoom.get(log.room);
      if (!latencies) continue;
      const seen = new Set<number>();
      log.numbers.forEach((number, k) => {
        const sent = sentAt.get(number);
        if (sent === undefined || seen.has(number)) return;
        seen.add(number);
        const latency = log.receivedAt[k] - sent;
        latencies.whole.push(latency);
        if (sent >= movedAt && sent <= duringEnd) latencies.during.push(latency);
      });
    }
  }
  const sorted = shift.rooms.map(({ room }) => sortedHalves(byRoom.get(room) ?? { during: [], whole: [] }));
  return {
    atS: shift.atS,
    duringS: shift.duringS,
    during: mergedStats(sorted.map((halves) => halves.during)),
    whole: mergedStats(sorted.map((halves) => halves.whole)),
    rooms: shift.rooms.map(({ room, from, to }, i) => ({
      room,
      from,
      to,
      during: mergedStats([sorted[i].during]),
      whole: mergedStats([sorted[i].whole]),
    })),
    publishesByRegion: publishesByRegion(shift, publishes, movedAt),
  };
}

/** Event number → when it was first handed to its publisher's client (a number logged twice is one event). */
function firstSendTimes(publishes: PublishLog[]): Map<number, number> {
  const sentAt = new Map<number, number>();
  for (const p of publishes) if (!sentAt.has(p.number)) sentAt.set(p.number, p.sentAt);
  return sentAt;
}

function sortedHalves(latencies: RoomLatencies): { during: Float64Array; whole: Float64Array } {
  return { during: Float64Array.from(latencies.during).sort(), whole: Float64Array.from(latencies.whole).sort() };
}

/** Per region, the room regions first in the rooms' order, then any other region a publisher was connected to. */
function publishesByRegion(shift: ShiftPlan, publishes: PublishLog[], movedAt: number): RegionPublishes[] {
  const counts = new Map<string, RegionPublishes>();
  const row = (region: string): RegionPublishes => {
    let entry = counts.get(region);
    if (!entry) counts.set(region, (entry = { region, before: 0, after: 0 }));
    return entry;
  };
  for (const { from, to } of shift.rooms) {
    row(from);
    row(to);
  }
  for (const p of publishes) {
    if (p.sentAt < movedAt) row(p.region).before++;
    else row(p.region).after++;
  }
  return [...counts.values()];
}
