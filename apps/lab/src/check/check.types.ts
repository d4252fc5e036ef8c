import type { ClientLog, Impl, PublishLog } from '../load/load.types.js';

/** Everything the checker reads: every publish and every client's log of one run. */
export interface CheckInput {
  impl: Impl;
  publishes: PublishLog[];
  clients: ClientLog[];
  /** Room → ids of the clients joined to it before publishing started (they stay members). */
  members: Record<string, string[]>;
  /** Whether the implementation promises contiguous seqs per room (geo: true). */
  contiguousSeqs: boolean;
  /** Run start (`Date.now()`), the zero of every timeline. */
  startedAt: number;
}

/** Counts that must all be zero for geo-ws (the peers make no such promise). */
export interface Anomalies {
  /** (member, acked event) pairs where the member never received the event. */
  lost: number;
  /** Deliveries of an event a member had already received. */
  duplicated: number;
  /** Members whose order of common events differs from the room's reference order. */
  divergentMembers: number;
  /** Adjacent pairs in a member's log that are out of the room's reference order. */
  orderViolations: number;
  /** Places where a member's seq jumped by more than 1 with no gap announced (contiguousSeqs only). */
  seqGaps: number;
  /** Events that reached members under two different seqs (one publish applied twice). */
  appliedTwice: number;
  /** Acked publishes that no member received at all. */
  ackedMissing: number;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Log-spaced latency histogram: `counts[i]` deliveries fell in [bounds[i-1], bounds[i]) ms. */
export interface Histogram {
  bounds: number[];
  counts: number[];
}

/** One second of the run. */
export interface TimelinePoint {
  /** Seconds since `startedAt`. */
  t: number;
  delivered: number;
  p50: number;
  p99: number;
  /** Clients disconnected at the end of this second. */
  reconnecting: number;
}

/** Deliveries of one publisher region's events: to receivers in that region, and elsewhere. */
export interface PublisherRegionLatency {
  region: string;
  same: LatencyStats;
  cross: LatencyStats;
}

/** An event's place in its room: the rank of its publish among the room's publishes by `sentAt`, bucketed. */
export type RoomPlace = '1st' | '2nd' | '3rd-5th' | '6th and later';

/**
 * First deliveries of the events at one place in their rooms: to receivers in the
 * publisher's region, and elsewhere. A room's first events pay for placing it and starting
 * its readers; later ones show the steady latency.
 */
export interface PlaceLatency {
  place: RoomPlace;
  same: LatencyStats;
  cross: LatencyStats;
}

export interface CheckResult {
  anomalies: Anomalies;
  publishes: { total: number; acked: number; failed: number; unacked: number; duplicateAcks: number };
  deliveries: number;
  /** Same-region (receiver in the publisher's region) vs cross-region, from send to arrival. */
  latency: {
    all: LatencyStats;
    same: LatencyStats;
    cross: LatencyStats;
    /** The same split per publisher region, by region name (absent from reports written before it). */
    byPublisherRegion?: PublisherRegionLatency[];
    /** The same split by the event's place in its room, every place in order (absent from reports written before it). */
    byPlaceInRoom?: PlaceLatency[];
  };
  histograms: { same: Histogram; cross: Histogram };
  /** Disconnect → back in every room, per outage (ms). */
  failover: { count: number; p50: number; p99: number; max: number };
  gaps: number;
  /**
   * Member × acked event never delivered, where the member was told of a gap in that room
   * (a rejoin with `recovered: false`) after the event was sent: a loss announced, not
   * counted in `anomalies.lost` (absent from reports written before it).
   */
  announcedLost?: number;
  errors: Record<string, number>;
  timeline: TimelinePoint[];
  /** A few concrete examples per non-zero anomaly, for the report. */
  examples: string[];
}
