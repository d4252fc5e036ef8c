import type { ClientLog, PublishLog, RoomLog } from '../load/load.types.js';
import type {
  Anomalies,
  CheckInput,
  CheckResult,
  Histogram,
  LatencyStats,
  PlaceLatency,
  PublisherRegionLatency,
  RoomPlace,
  TimelinePoint,
} from './check.types.js';

/** Concrete examples kept per anomaly kind: enough to start looking, few enough to read. */
const EXAMPLES_PER_KIND = 5;
/** Latency histogram: log-spaced bounds from 0.5 ms to 60 s. */
const HISTOGRAM_MIN_MS = 0.5;
const HISTOGRAM_MAX_MS = 60_000;
const HISTOGRAM_BUCKETS = 40;
/** A timeline longer than this (10 h) means a clock is wrong, not that the run was that long. */
const MAX_TIMELINE_SECONDS = 36_000;

/** The log-spaced bounds every histogram uses (rounded to 3 significant digits for reading). */
export const LATENCY_BOUNDS_MS: readonly number[] = Array.from({ length: HISTOGRAM_BUCKETS + 1 }, (_, i) =>
  Number((HISTOGRAM_MIN_MS * Math.pow(HISTOGRAM_MAX_MS / HISTOGRAM_MIN_MS, i / HISTOGRAM_BUCKETS)).toPrecision(3)),
);

/** The places of an event in its room the latency is split by, in order (see `placeOf`). */
export const ROOM_PLACES: readonly RoomPlace[] = ['1st', '2nd', '3rd-5th', '6th and later'];

type AnomalyKind = keyof Anomalies;

/** One room: a dense index per event number, so per-member state is a typed array instead of a Set. */
interface RoomState {
  index: Map<number, number>;
  /** Dense index → event number. */
  numbers: number[];
  /** Dense indexes of the acked publishes to this room. */
  acked: number[];
  /** Per dense index: members that received it at least once. */
  receivers: number[];
  /** Every client log of this room, in the order of `CheckInput.clients`. */
  logs: { client: ClientLog; log: RoomLog }[];
}

/** Every anomaly count at 0: what a run that kept every guarantee reports. */
export function noAnomalies(): Anomalies {
  return { lost: 0, duplicated: 0, divergentMembers: 0, orderViolations: 0, seqGaps: 0, appliedTwice: 0, ackedMissing: 0 };
}

/**
 * Checks one run: every client's log against every publish (see `Anomalies` for what each
 * count means), plus latency, failover and a per-second timeline. Linear in the number of
 * deliveries apart from the numeric sorts, so ~2 million deliveries take about a second.
 */
export function check(input: CheckInput): CheckResult {
  const examples = new Examples();
  const anomalies = noAnomalies();

  // Publishes: first log of each number wins for latency; every log counts in the totals.
  const publishByNumber = new Map<number, PublishLog>();
  const publishes = { total: input.publishes.length, acked: 0, failed: 0, unacked: 0, duplicateAcks: 0 };
  const errors: Record<string, number> = {};
  const rooms = new Map<string, RoomState>();
  const room = (name: string): RoomState => {
    let state = rooms.get(name);
    if (!state) rooms.set(name, (state = { index: new Map(), numbers: [], acked: [], receivers: [], logs: [] }));
    return state;
  };
  const indexOf = (state: RoomState, number: number): number => {
    let i = state.index.get(number);
    if (i === undefined) {
      i = state.numbers.length;
      state.index.set(number, i);
      state.numbers.push(number);
      state.receivers.push(0);
    }
    return i;
  };
  // Every seq a number was acked or delivered under: more than one means it was applied twice.
  const seqsOf = new Map<number, number[]>();
  const noteSeq = (number: number, seq: number | undefined): void => {
    if (seq === undefined || seq < 0) return;
    const seen = seqsOf.get(number);
    if (!seen) seqsOf.set(number, [seq]);
    else if (!seen.includes(seq)) seen.push(seq);
  };

  for (const p of input.publishes) {
    if (!publishByNumber.has(p.number)) publishByNumber.set(p.number, p);
    if (p.duplicate) publishes.duplicateAcks++;
    if (p.ackedAt !== undefined) {
      publishes.acked++;
      noteSeq(p.number, p.ackSeq);
    } else if (p.error !== undefined) publishes.failed++;
    else publishes.unacked++;
    if (p.error !== undefined) errors[`publish:${p.error}`] = (errors[`publish:${p.error}`] ?? 0) + 1;
    const state = room(p.room);
    const i = indexOf(state, p.number);
    if (p.ackedAt !== undefined) state.acked.push(i);
  }
  // A number logged twice (a retry) is still one event of the room.
  for (const state of rooms.values()) state.acked = [...new Set(state.acked)];
  const placeByNumber = placesInRooms(publishByNumber.values());

  let deliveries = 0;
  let gaps = 0;
  let announcedLost = 0;
  // Per member and room: when it was told of gaps there.
  const gapsTold = new Map<string, number[]>();
  for (const client of input.clients)
    for (const { room: gapRoom, at } of client.gapsTold ?? []) {
      const key = `${client.id} ${gapRoom}`;
      gapsTold.set(key, [...(gapsTold.get(key) ?? []), at]);
    }
  for (const client of input.clients) {
    gaps += client.gaps;
    for (const [code, n] of Object.entries(client.errors)) errors[code] = (errors[code] ?? 0) + n;
    for (const log of client.rooms) {
      room(log.room).logs.push({ client, log });
      deliveries += log.numbers.length;
    }
  }

  // Latency and timeline buffers, sized once: same-region from the front, cross-region from the back,
  // and at the same position a key: the publisher's region (an index into `publisherRegions`) ×
  // ROOM_PLACES.length + the event's place in its room (an index into ROOM_PLACES).
  const latencies = new Float64Array(deliveries);
  const latencyKeys = new Uint16Array(deliveries);
  const publisherRegions = new Map<string, number>();
  const publisherRegionIndex = (region: string): number => {
    let i = publisherRegions.get(region);
    if (i === undefined) publisherRegions.set(region, (i = publisherRegions.size));
    return i;
  };
  let sameCount = 0;
  let crossCount = 0;
  const sameHistogram = new Uint32Array(LATENCY_BOUNDS_MS.length + 1);
  const crossHistogram = new Uint32Array(LATENCY_BOUNDS_MS.length + 1);
  // Per delivery (first receipts of known publishes only): second of arrival and latency, for the timeline.
  const deliverySecond = new Int32Array(deliveries);
  const deliveryLatency = new Float64Array(deliveries);
  let timed = 0;
  const deliveredPerSecond: number[] = [];

  const membersOf = (name: string): Set<string> => new Set(input.members[name] ?? []);

  for (const [name, state] of rooms) {
    const members = membersOf(name);
    const logs = state.logs;
    // Deliveries of numbers nobody logged publishing still get an index (they can be duplicated or misordered).
    for (const { log } of logs) for (const number of log.numbers) indexOf(state, number);
    // Order reference for peers without seqs: the member (or, failing that, client) with the most deliveries.
    let reference: Int32Array | undefined;
    if (!input.contiguousSeqs) {
      let best: RoomLog | undefined;
      for (const { client, log } of logs) {
        if (members.size > 0 && !members.has(client.id)) continue;
        if (!best || log.numbers.length > best.numbers.length) best = log;
      }
      if (best) {
        reference = new Int32Array(state.numbers.length).fill(-1);
        let rank = 0;
        for (const number of best.numbers) {
          const i = indexOf(state, number);
          if (reference[i] === -1) reference[i] = rank++;
        }
      }
    }

    const seenByMember = new Map<string, Uint8Array>();
    for (const { client, log } of logs) {
      const isMember = members.has(client.id);
      const seen = new Uint8Array(state.numbers.length);
      let lastRank = -1;
      let maxSeq = -1;
      let divergent = false;
      for (let k = 0; k < log.numbers.length; k++) {
        const number = log.numbers[k];
        const seq = log.seqs[k] ?? -1;
        const at = log.receivedAt[k];
        const i = indexOf(state, number);
        noteSeq(number, seq);
        if (seen[i]) {
          anomalies.duplicated++;
          examples.add('duplicated', `client ${client.id} ${name}: number ${number} delivered twice`);
          continue;
        }
        seen[i] = 1;
        if (isMember) state.receivers[i]++;

        // Order: by seq when the transport has one, else by the reference member's arrival order.
        const rank = input.contiguousSeqs ? seq : reference ? reference[i] : -1;
        if (rank >= 0) {
          if (lastRank >= 0 && rank <= lastRank) {
            anomalies.orderViolations++;
            divergent = true;
            examples.add(
              'orderViolations',
              `client ${client.id} ${name}: number ${number}${seq >= 0 ? ` (seq ${seq})` : ''} arrived after a later event`,
            );
          }
          lastRank = rank;
        }
        // A gap: a seq beyond everything seen so far + 1 (a late earlier seq is an order problem, not a gap).
        if (input.contiguousSeqs && seq >= 0) {
          if (maxSeq >= 0 && seq > maxSeq + 1) {
            anomalies.seqGaps++;
            examples.add(
              'seqGaps',
              `client ${client.id} ${name}: seq ${maxSeq} then ${seq}${client.gaps > 0 ? ' (client announced a gap)' : ' (no gap announced)'}`,
            );
          }
          if (seq > maxSeq) maxSeq = seq;
        }

        const publish = publishByNumber.get(number);
        if (publish) {
          const latency = at - publish.sentAt;
          const region = log.regions[k];
          const slot = region === publish.region ? sameCount++ : deliveries - 1 - crossCount++;
          latencies[slot] = latency;
          latencyKeys[slot] = publisherRegionIndex(publish.region) * ROOM_PLACES.length + (placeByNumber.get(number) ?? 0);
          if (region === publish.region) sameHistogram[bucketOf(latency)]++;
          else crossHistogram[bucketOf(latency)]++;
          deliverySecond[timed] = secondOf(at, input.startedAt);
          deliveryLatency[timed++] = latency;
        }
      }
      // Every delivery counts in the rate, duplicates included.
      for (const at of log.receivedAt) {
        const s = secondOf(at, input.startedAt);
        deliveredPerSecond[s] = (deliveredPerSecond[s] ?? 0) + 1;
      }
      if (divergent) {
        anomalies.divergentMembers++;
        examples.add('divergentMembers', `client ${client.id} ${name}: order differs from the room's reference order`);
      }
      if (isMember) seenByMember.set(client.id, seen);
    }

    // Lost: every member × every acked publish of the room it never received, unless the
    // member was told of a gap in the room after the event was sent (announced).
    for (const member of members) {
      const seen = seenByMember.get(member);
      const told = gapsTold.get(`${member} ${name}`);
      for (const i of state.acked) {
        if (seen && i < seen.length && seen[i]) continue;
        const sentAt = publishByNumber.get(state.numbers[i])?.sentAt;
        if (told && sentAt !== undefined && told.some((at) => at >= sentAt)) {
          announcedLost++;
          continue;
        }
        anomalies.lost++;
        examples.add('lost', `client ${member} ${name}: acked number ${state.numbers[i]} never delivered`);
      }
    }
    for (const i of state.acked) {
      if (members.size > 0 && state.receivers[i] === 0) {
        anomalies.ackedMissing++;
        examples.add('ackedMissing', `${name}: acked number ${state.numbers[i]} reached no member`);
      }
    }
  }

  for (const [number, seqs] of seqsOf) {
    if (seqs.length < 2) continue;
    anomalies.appliedTwice++;
    examples.add('appliedTwice', `number ${number} appears under seqs ${seqs.join(', ')}`);
  }

  // Each half grouped by (publisher region, place in room) and each group sorted: the per-region
  // and per-place figures merge their groups, the overall ones every group.
  const groups = publisherRegions.size * ROOM_PLACES.length;
  const same = groupByKey(latencies, latencyKeys, 0, sameCount, groups);
  const cross = groupByKey(latencies, latencyKeys, deliveries - crossCount, deliveries, groups);
  for (const group of [...same, ...cross]) group.sort();
  const ofRegion = (half: Float64Array[], region: number): Float64Array[] =>
    half.slice(region * ROOM_PLACES.length, (region + 1) * ROOM_PLACES.length);
  const ofPlace = (half: Float64Array[], place: number): Float64Array[] => half.filter((_, g) => g % ROOM_PLACES.length === place);
  const byPublisherRegion: PublisherRegionLatency[] = [...publisherRegions]
    .map(([region, i]) => ({ region, same: mergedStats(ofRegion(same, i)), cross: mergedStats(ofRegion(cross, i)) }))
    .sort((a, b) => a.region.localeCompare(b.region));
  const byPlaceInRoom: PlaceLatency[] = ROOM_PLACES.map((place, q) => ({
    place,
    same: mergedStats(ofPlace(same, q)),
    cross: mergedStats(ofPlace(cross, q)),
  }));
  const failover = failoverOf(input.clients);
  return {
    anomalies,
    publishes,
    deliveries,
    latency: {
      all: mergedStats([...same, ...cross]),
      same: mergedStats(same),
      cross: mergedStats(cross),
      byPublisherRegion,
      byPlaceInRoom,
    },
    histograms: { same: histogram(sameHistogram), cross: histogram(crossHistogram) },
    failover,
    gaps,
    announcedLost,
    errors,
    timeline: timeline(
      deliverySecond.subarray(0, timed),
      deliveryLatency.subarray(0, timed),
      deliveredPerSecond,
      input.clients,
      input.startedAt,
    ),
    examples: examples.list(),
  };
}

/** Up to EXAMPLES_PER_KIND strings per anomaly, in the order found, and how many more there were. */
class Examples {
  private readonly byKind = new Map<AnomalyKind, string[]>();
  private readonly more = new Map<AnomalyKind, number>();

  add(kind: AnomalyKind, text: string): void {
    const list = this.byKind.get(kind) ?? [];
    this.byKind.set(kind, list);
    if (list.length < EXAMPLES_PER_KIND) list.push(`${kind}: ${text}`);
    else this.more.set(kind, (this.more.get(kind) ?? 0) + 1);
  }

  list(): string[] {
    const out: string[] = [];
    for (const [kind, list] of this.byKind) {
      out.push(...list);
      const more = this.more.get(kind);
      if (more) out.push(`${kind}: … and ${more} more`);
    }
    return out;
  }
}

/** The index into ROOM_PLACES of the publish at `rank` (0: the room's first) in its room. */
function placeOf(rank: number): number {
  return rank === 0 ? 0 : rank === 1 ? 1 : rank < 5 ? 2 : 3;
}

/**
 * Each publish's place in its room (number → index into ROOM_PLACES): its rank among the
 * room's publishes ordered by `sentAt`, ties by number. One entry per publish, none per delivery.
 */
function placesInRooms(publishes: Iterable<PublishLog>): Map<number, number> {
  const byRoom = new Map<string, PublishLog[]>();
  for (const p of publishes) {
    const list = byRoom.get(p.room);
    if (list) list.push(p);
    else byRoom.set(p.room, [p]);
  }
  const places = new Map<number, number>();
  for (const list of byRoom.values()) {
    list.sort((a, b) => a.sentAt - b.sentAt || a.number - b.number);
    list.forEach((p, rank) => places.set(p.number, placeOf(rank)));
  }
  return places;
}

function secondOf(at: number, startedAt: number): number {
  return Math.min(MAX_TIMELINE_SECONDS, Math.max(0, Math.floor((at - startedAt) / 1000)));
}

/** Index into a histogram's counts: 0 below the first bound, bounds.length at or above the last. */
function bucketOf(ms: number): number {
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LATENCY_BOUNDS_MS[mid] <= ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function histogram(counts: Uint32Array): Histogram {
  return { bounds: [...LATENCY_BOUNDS_MS], counts: Array.from(counts) };
}

/** Nearest-rank percentile of a sorted array (0 when empty). */
function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * Percentiles over a few sorted arrays without building one more: each rank found by a merge
 * walk from the nearer end (the smallest head or the largest tail each step), so p99 reads
 * 1% of the values and p50 half of them.
 */
export function mergedStats(sorted: Float64Array[]): LatencyStats {
  const runs = sorted.filter((run) => run.length > 0);
  const n = runs.reduce((sum, run) => sum + run.length, 0);
  if (n === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const at = (p: number): number => round(valueAtRank(runs, n, Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))));
  const max = runs.reduce((most, run) => Math.max(most, run[run.length - 1]), -Infinity);
  return { count: n, p50: at(50), p95: at(95), p99: at(99), max: round(max) };
}

/** The value at rank `k` (0-based) of non-empty sorted `runs` (`n` values in all) merged. */
function valueAtRank(runs: Float64Array[], n: number, k: number): number {
  if (runs.length === 1) return runs[0][k];
  // How many values each run has given up from the end walked.
  const taken = new Int32Array(runs.length);
  if (k < n / 2) {
    for (let step = 0; ; step++) {
      let smallest = -1;
      for (let r = 0; r < runs.length; r++) {
        if (taken[r] < runs[r].length && (smallest < 0 || runs[r][taken[r]] < runs[smallest][taken[smallest]])) smallest = r;
      }
      const value = runs[smallest][taken[smallest]++];
      if (step === k) return value;
    }
  }
  const tail = (r: number): number => runs[r][runs[r].length - 1 - taken[r]];
  for (let step = n - 1; ; step--) {
    let largest = -1;
    for (let r = 0; r < runs.length; r++) {
      if (taken[r] < runs[r].length && (largest < 0 || tail(r) > tail(largest))) largest = r;
    }
    const value = tail(largest);
    taken[largest]++;
    if (step === k) return value;
  }
}

/**
 * Groups `values[from, to)` by `keys` (0 … groups-1, at the same positions) in place, the
 * keys moving with their values: a counting pass, then each value swapped straight into its
 * group. Returns each key's group as a view.
 */
function groupByKey(values: Float64Array, keys: Uint16Array, from: number, to: number, groups: number): Float64Array[] {
  const begin = new Int32Array(groups + 1);
  for (let i = from; i < to; i++) begin[keys[i] + 1]++;
  begin[0] = from;
  for (let g = 0; g < groups; g++) begin[g + 1] += begin[g];
  const next = begin.slice(0, groups);
  for (let g = 0; g < groups; g++) {
    while (next[g] < begin[g + 1]) {
      const i = next[g];
      const key = keys[i];
      if (key === g) {
        next[g]++;
        continue;
      }
      const j = next[key]++;
      const value = values[i];
      values[i] = values[j];
      values[j] = value;
      keys[i] = keys[j];
      keys[j] = key;
    }
  }
  return Array.from({ length: groups }, (_, g) => values.subarray(begin[g], begin[g + 1]));
}

/** Outages per client: a `down` then the next `up`; an outage that never ended is not a failover time. */
function failoverOf(clients: ClientLog[]): CheckResult['failover'] {
  const durations: number[] = [];
  for (const client of clients) {
    let downAt: number | undefined;
    for (const change of client.connectivity) {
      if (change.kind === 'down') downAt ??= change.at;
      else if (downAt !== undefined) {
        durations.push(change.at - downAt);
        downAt = undefined;
      }
    }
  }
  const sorted = Float64Array.from(durations).sort();
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : 0),
  };
}

/**
 * Per second since the start: deliveries (all), p50/p99 latency of first deliveries arriving that
 * second (a counting sort by second, then one numeric sort per second), and clients disconnected
 * at the end of the second.
 */
function timeline(
  seconds: Int32Array,
  latencies: Float64Array,
  delivered: number[],
  clients: ClientLog[],
  startedAt: number,
): TimelinePoint[] {
  // Outages as +1/-1 at the seconds whose end they cover.
  const change: number[] = [];
  let length = delivered.length;
  const endSecond = (at: number): number => Math.min(MAX_TIMELINE_SECONDS, Math.max(0, Math.ceil((at - startedAt) / 1000 - 1)));
  for (const client of clients) {
    let downAt: number | undefined;
    const close = (upAt: number | undefined): void => {
      if (downAt === undefined) return;
      const from = endSecond(downAt);
      const to = upAt === undefined ? MAX_TIMELINE_SECONDS + 1 : endSecond(upAt);
      if (to > from) {
        change[from] = (change[from] ?? 0) + 1;
        change[to] = (change[to] ?? 0) - 1;
      }
      downAt = undefined;
    };
    for (const c of client.connectivity) {
      length = Math.max(length, secondOf(c.at, startedAt) + 1);
      if (c.kind === 'down') downAt ??= c.at;
      else close(c.at);
    }
    close(undefined);
  }

  const offsets = new Int32Array(length + 1);
  for (const s of seconds) offsets[s + 1]++;
  for (let t = 0; t < length; t++) offsets[t + 1] += offsets[t];
  const bySecond = new Float64Array(seconds.length);
  const cursor = offsets.slice(0, length);
  for (let k = 0; k < seconds.length; k++) bySecond[cursor[seconds[k]]++] = latencies[k];

  const points: TimelinePoint[] = [];
  let reconnecting = 0;
  for (let t = 0; t < length; t++) {
    reconnecting += change[t] ?? 0;
    const slice = bySecond.subarray(offsets[t], offsets[t + 1]).sort();
    points.push({
      t,
      delivered: delivered[t] ?? 0,
      p50: round(percentile(slice, 50)),
      p99: round(percentile(slice, 99)),
      reconnecting,
    });
  }
  return points;
}
