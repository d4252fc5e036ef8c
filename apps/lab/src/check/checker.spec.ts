import { describe, expect, it } from '@jest/globals';

import type { ClientLog, PublishLog } from '../load/load.types.js';
import type { Anomalies, CheckInput } from './check.types.js';
import { check } from './checker.js';

const T0 = 1_700_000_000_000;
const ZERO: Anomalies = { lost: 0, duplicated: 0, divergentMembers: 0, orderViolations: 0, seqGaps: 0, appliedTwice: 0, ackedMissing: 0 };

/** An acked publish to `room` from asia, sent at T0 + number ms, with seq = number unless told. */
function pub(number: number, extra: Partial<PublishLog> = {}): PublishLog {
  return { number, room: 'r', publisher: 'p', region: 'asia', sentAt: T0 + number, ackedAt: T0 + number + 5, ackSeq: number, ...extra };
}

/** A delivery: [number, seq, ms after T0, region]; seq and time default to the number and T0 + 1000 + number. */
type Delivery = [number, number?, number?, string?];

function client(id: string, deliveries: Delivery[], extra: Partial<ClientLog> = {}, room = 'r'): ClientLog {
  return {
    id,
    home: 'asia',
    rooms: [
      {
        room,
        numbers: deliveries.map(([n]) => n),
        seqs: deliveries.map(([n, seq]) => seq ?? n),
        receivedAt: deliveries.map(([n, , at]) => T0 + (at ?? 1000 + n)),
        regions: deliveries.map(([, , , region]) => region ?? 'asia'),
      },
    ],
    connectivity: [],
    gaps: 0,
    errors: {},
    ...extra,
  };
}

function input(publishes: PublishLog[], clients: ClientLog[], extra: Partial<CheckInput> = {}): CheckInput {
  return {
    impl: 'geo',
    publishes,
    clients,
    members: { r: clients.map((c) => c.id) },
    contiguousSeqs: true,
    startedAt: T0,
    ...extra,
  };
}

const all = (n: number): Delivery[] => Array.from({ length: n }, (_, i) => [i + 1]);

describe('check: anomalies', () => {
  it('a clean run has no anomaly and no example', () => {
    const publishes = [pub(1), pub(2), pub(3)];
    const result = check(input(publishes, [client('a', all(3)), client('b', all(3)), client('c', all(3))]));
    expect(result.anomalies).toEqual(ZERO);
    expect(result.examples).toEqual([]);
    expect(result.deliveries).toBe(9);
    expect(result.publishes).toEqual({ total: 3, acked: 3, failed: 0, unacked: 0, duplicateAcks: 0 });
  });

  it('lost: an acked publish a member never received (and the seq jump it leaves, no gap announced)', () => {
    const publishes = [pub(1), pub(2), pub(3), pub(4, { ackedAt: undefined, ackSeq: undefined })];
    const result = check(input(publishes, [client('a', all(3)), client('b', [[1], [3]])]));
    expect(result.anomalies).toEqual({ ...ZERO, lost: 1, seqGaps: 1 });
    expect(result.examples).toContain('lost: client b r: acked number 2 never delivered');
    expect(result.examples).toContain('seqGaps: client b r: seq 1 then 3 (no gap announced)');
    expect(result.publishes).toEqual({ total: 4, acked: 3, failed: 0, unacked: 1, duplicateAcks: 0 });
  });

  it('a seq gap the client was told about is still counted, and the example says it was announced', () => {
    const result = check(input([pub(1), pub(2), pub(3)], [client('a', [[1], [3]], { gaps: 1 }), client('b', all(3))]));
    expect(result.anomalies).toEqual({ ...ZERO, lost: 1, seqGaps: 1 });
    expect(result.gaps).toBe(1);
    expect(result.examples).toContain('seqGaps: client a r: seq 1 then 3 (client announced a gap)');
  });

  it('a lost event the member was told of (a gap in that room after it was sent) is announced, not silent', () => {
    const told = (at: number, room = 'r') => ({ gaps: 1, gapsTold: [{ room, at: T0 + at }] });
    const result = check(
      input(
        [pub(1), pub(2), pub(3)],
        [
          client('a', [[1], [3]], told(500)), // told after number 2 was sent: announced
          client('b', [[1], [3]], told(1)), // told before it was sent: silent
          client('c', [[1], [3]], told(500, 'other')), // told of another room: silent
          client('d', all(3)),
        ],
      ),
    );
    expect({ lost: result.anomalies.lost, announcedLost: result.announcedLost }).toEqual({ lost: 2, announcedLost: 1 });
    expect(result.examples).toContain('lost: client b r: acked number 2 never delivered');
    expect(result.examples).not.toContain('lost: client a r: acked number 2 never delivered');
  });

  it('duplicated: a second delivery of the same number (not an order problem)', () => {
    const result = check(input([pub(1), pub(2), pub(3)], [client('a', [[1], [2], [2], [3]]), client('b', all(3))]));
    expect(result.anomalies).toEqual({ ...ZERO, duplicated: 1 });
    expect(result.examples).toEqual(['duplicated: client a r: number 2 delivered twice']);
    expect(result.deliveries).toBe(7);
  });

  it('order by seq (geo): a member that got seq 3 before seq 2', () => {
    const result = check(input([pub(1), pub(2), pub(3), pub(4)], [client('a', all(4)), client('b', [[1], [3], [2], [4]])]));
    // 1 → 3 also jumps past 2 (a gap at that moment); 3 → 2 is the one pair out of order.
    expect(result.anomalies).toEqual({ ...ZERO, divergentMembers: 1, orderViolations: 1, seqGaps: 1 });
  });

  it('order without seqs (peers): against the member with the most deliveries; no seq gaps counted', () => {
    const noSeq = (numbers: number[]): Delivery[] => numbers.map((n) => [n, -1]);
    const publishes = [1, 2, 3, 4].map((n) => pub(n, { ackSeq: undefined }));
    const clients = [
      client('a', noSeq([3, 4])),
      client('b', noSeq([1, 2, 3, 4])),
      client('c', noSeq([2, 1, 4, 3])),
      client('d', noSeq([1, 3])),
    ];
    const result = check(input(publishes, clients, { impl: 'socketio', contiguousSeqs: false }));
    // a and d lost 2 events each; c has two adjacent pairs reversed.
    expect(result.anomalies).toEqual({ ...ZERO, lost: 4, divergentMembers: 1, orderViolations: 2 });
    expect(result.examples.filter((e) => e.startsWith('orderViolations'))).toHaveLength(2);
  });

  it('appliedTwice: a number delivered under two seqs, and a number acked under two seqs', () => {
    const publishes = [pub(1), pub(2), pub(3), pub(3, { ackSeq: 4, duplicate: true })];
    // Number 2 was appended twice (seqs 2 and 4... here delivered as 2 to a and as 5 to b).
    const result = check(input(publishes, [client('a', [[1], [2], [3]]), client('b', [[1], [3], [2, 5]])]));
    expect(result.anomalies.appliedTwice).toBe(2);
    expect(result.examples).toContain('appliedTwice: number 2 appears under seqs 2, 5');
    expect(result.examples).toContain('appliedTwice: number 3 appears under seqs 3, 4');
    expect(result.publishes).toEqual({ total: 4, acked: 4, failed: 0, unacked: 0, duplicateAcks: 1 });
  });

  it('ackedMissing: an acked publish no member received (lost for every member too)', () => {
    const publishes = [pub(1), pub(2), pub(3, { error: 'TIMEOUT', ackedAt: undefined, ackSeq: undefined })];
    const result = check(input(publishes, [client('a', [[1]]), client('b', [[1]])]));
    expect(result.anomalies).toEqual({ ...ZERO, lost: 2, ackedMissing: 1 });
    expect(result.examples).toContain('ackedMissing: r: acked number 2 reached no member');
    expect(result.publishes).toEqual({ total: 3, acked: 2, failed: 1, unacked: 0, duplicateAcks: 0 });
    expect(result.errors).toEqual({ 'publish:TIMEOUT': 1 });
  });

  it('rooms are independent, and a non-member log does not count as lost', () => {
    const publishes = [pub(1), pub(2, { room: 's', ackSeq: 1 })];
    const result = check(
      input(publishes, [client('a', [[1]]), client('b', [[2, 1]], {}, 's'), client('x', [], {}, 's')], { members: { r: ['a'], s: ['b'] } }),
    );
    expect(result.anomalies).toEqual(ZERO);
  });

  it('examples stop at five per kind and say how many more', () => {
    const publishes = all(20).map(([n]) => pub(n));
    const result = check(input(publishes, [client('a', all(20)), client('b', [])]));
    expect(result.anomalies.lost).toBe(20);
    expect(result.examples).toHaveLength(6);
    expect(result.examples.at(-1)).toBe('lost: … and 15 more');
  });
});

describe('check: latency, failover, timeline', () => {
  it('splits latency same-region vs cross-region, from sentAt to arrival', () => {
    // Sent at T0 + 1..4 from asia; a receives in asia 10 ms later, b in eu 100 ms later.
    const publishes = [pub(1), pub(2), pub(3), pub(4)];
    const a = client(
      'a',
      all(4).map(([n]) => [n, n, n + 10, 'asia']),
    );
    const b = client(
      'b',
      all(4).map(([n]) => [n, n, n + 100, 'eu']),
    );
    const result = check(input(publishes, [a, b]));
    expect(result.latency.same).toEqual({ count: 4, p50: 10, p95: 10, p99: 10, max: 10 });
    expect(result.latency.cross).toEqual({ count: 4, p50: 100, p95: 100, p99: 100, max: 100 });
    expect(result.latency.all).toEqual({ count: 8, p50: 10, p95: 100, p99: 100, max: 100 });
    const sum = (counts: number[]): number => counts.reduce((x, y) => x + y, 0);
    expect(sum(result.histograms.same.counts)).toBe(4);
    expect(sum(result.histograms.cross.counts)).toBe(4);
    expect(result.histograms.same.counts).toHaveLength(result.histograms.same.bounds.length + 1);
    // The bucket holding 10 ms: [bounds[i-1], bounds[i]).
    const i = result.histograms.same.counts.findIndex((c) => c > 0);
    expect(result.histograms.same.bounds[i - 1]).toBeLessThanOrEqual(10);
    expect(result.histograms.same.bounds[i]).toBeGreaterThan(10);
  });

  it("splits latency per publisher region too: same-region and cross-region of each region's events", () => {
    // asia publishes 1..4, eu 5..6. a (asia) gets asia's 10 ms after sending and eu's 100 ms after; b (eu) 100 and 20.
    const publishes = [pub(1), pub(2), pub(3), pub(4), pub(5, { region: 'eu' }), pub(6, { region: 'eu' })];
    const a = client(
      'a',
      all(6).map(([n]) => [n, n, n + (n <= 4 ? 10 : 100), 'asia']),
    );
    const b = client(
      'b',
      all(6).map(([n]) => [n, n, n + (n <= 4 ? 100 : 20), 'eu']),
    );
    const result = check(input(publishes, [a, b]));
    expect(result.latency.byPublisherRegion).toEqual([
      {
        region: 'asia',
        same: { count: 4, p50: 10, p95: 10, p99: 10, max: 10 },
        cross: { count: 4, p50: 100, p95: 100, p99: 100, max: 100 },
      },
      { region: 'eu', same: { count: 2, p50: 20, p95: 20, p99: 20, max: 20 }, cross: { count: 2, p50: 100, p95: 100, p99: 100, max: 100 } },
    ]);
    // The overall split is unchanged by it: every region's same-region deliveries together.
    expect(result.latency.same).toEqual({ count: 6, p50: 10, p95: 20, p99: 20, max: 20 });
    expect(result.latency.cross).toEqual({ count: 6, p50: 100, p95: 100, p99: 100, max: 100 });
    expect(result.latency.all).toEqual({ count: 12, p50: 20, p95: 100, p99: 100, max: 100 });
  });

  it('per publisher region and overall, the percentiles are exact over interleaved regions', () => {
    const regions = ['asia', 'eu', 'us'];
    // A fixed pseudo-random sequence: every region publishes, every receiver region gets every event.
    let seed = 7;
    const random = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const n = 300;
    const publishes = Array.from({ length: n }, (_, i) => pub(i + 1, { region: regions[Math.floor(random() * 3)], sentAt: T0 }));
    const clients = regions.map((region) =>
      client(
        region,
        publishes.map((p): Delivery => [p.number, p.number, Math.round(1 + random() * 500), region]),
      ),
    );
    const result = check(input(publishes, clients));
    /** Nearest-rank figures of a plain list, the way the checker defines them. */
    const expected = (latencies: number[]) => {
      const sorted = [...latencies].sort((x, y) => x - y);
      const at = (p: number) => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] : 0);
      return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted.at(-1) ?? 0 };
    };
    const latencies = (keep: (publisher: string, receiver: string) => boolean): number[] =>
      clients.flatMap((c) =>
        c.rooms[0].numbers.flatMap((number, k) => {
          const p = publishes[number - 1];
          return keep(p.region, c.rooms[0].regions[k]) ? [c.rooms[0].receivedAt[k] - p.sentAt] : [];
        }),
      );
    expect(result.latency.byPublisherRegion).toEqual(
      regions.map((region) => ({
        region,
        same: expected(latencies((publisher, receiver) => publisher === region && receiver === region)),
        cross: expected(latencies((publisher, receiver) => publisher === region && receiver !== region)),
      })),
    );
    expect(result.latency.same).toEqual(expected(latencies((publisher, receiver) => publisher === receiver)));
    expect(result.latency.cross).toEqual(expected(latencies((publisher, receiver) => publisher !== receiver)));
    expect(result.latency.all).toEqual(expected(latencies(() => true)));
    // Every publish has the same sentAt, so a room place is the number's rank (ties by number): 1, 2, 3–5, 6 and later.
    const placeOf = (number: number): number => (number <= 2 ? number - 1 : number <= 5 ? 2 : 3);
    const ofPlace = (place: number, receiverSame: boolean): number[] =>
      clients.flatMap((c) =>
        c.rooms[0].numbers.flatMap((number, k) => {
          const p = publishes[number - 1];
          const sameRegion = p.region === c.rooms[0].regions[k];
          return placeOf(number) === place && sameRegion === receiverSame ? [c.rooms[0].receivedAt[k] - p.sentAt] : [];
        }),
      );
    expect(result.latency.byPlaceInRoom).toEqual(
      ['1st', '2nd', '3rd-5th', '6th and later'].map((place, q) => ({
        place,
        same: expected(ofPlace(q, true)),
        cross: expected(ofPlace(q, false)),
      })),
    );
  });

  it("splits latency by the event's place in its room: rank by sentAt within the room, first receipts of known publishes", () => {
    // Room r, by sentAt: 2, 3, 1, 4, 5, 6, 7 (not number order); 3's retry log comes later and is the same event.
    // Room s (eu publishes): 8 (sent before anything in r, still only s's 1st), then 9.
    const sentAt: Record<number, number> = { 1: 30, 2: 10, 3: 20, 4: 40, 5: 50, 6: 60, 7: 70, 8: 5, 9: 200 };
    const publishes = [
      ...[1, 2, 3, 4, 5, 6, 7].map((n) => pub(n, { sentAt: T0 + sentAt[n] })),
      pub(3, { sentAt: T0 + 100, duplicate: true }),
      ...[8, 9].map((n) => pub(n, { room: 's', region: 'eu', sentAt: T0 + sentAt[n] })),
    ];
    // Same-region latency per number; cross-region is 100 ms more, except the firsts and seconds (below).
    const same: Record<number, number> = { 2: 300, 3: 200, 1: 30, 4: 40, 5: 50, 6: 10, 7: 12, 8: 500, 9: 220 };
    const cross: Record<number, number> = { 2: 400, 3: 250, 1: 130, 4: 140, 5: 150, 6: 110, 7: 112, 8: 600, 9: 270 };
    const inOrder = (numbers: number[], latency: Record<number, number>, region: string): Delivery[] =>
      numbers.map((n, k) => [n, k + 1, sentAt[n] + latency[n], region]);
    const r = [2, 3, 1, 4, 5, 6, 7];
    const a = client('a', [...inOrder(r, same, 'asia'), [2, 1, 900, 'asia'], [99, 8, 900, 'asia']]);
    const b = client('b', inOrder(r, cross, 'eu'));
    const c = client('c', inOrder([8, 9], same, 'eu'), {}, 's');
    const d = client('d', inOrder([8, 9], cross, 'asia'), {}, 's');
    const result = check(input(publishes, [a, b, c, d], { members: { r: ['a', 'b'], s: ['c', 'd'] } }));
    const figures = (...values: number[]) => {
      const sorted = [...values].sort((x, y) => x - y);
      const at = (p: number) => sorted[Math.ceil((p / 100) * sorted.length) - 1];
      return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] };
    };
    expect(result.latency.byPlaceInRoom).toEqual([
      // r's 2 and s's 8.
      {
        place: '1st',
        same: { count: 2, p50: 300, p95: 500, p99: 500, max: 500 },
        cross: { count: 2, p50: 400, p95: 600, p99: 600, max: 600 },
      },
      // r's 3 (its retry log does not move it) and s's 9.
      { place: '2nd', same: figures(200, 220), cross: figures(250, 270) },
      // r's 1, 4, 5.
      {
        place: '3rd-5th',
        same: { count: 3, p50: 40, p95: 50, p99: 50, max: 50 },
        cross: { count: 3, p50: 140, p95: 150, p99: 150, max: 150 },
      },
      // r's 6, 7.
      { place: '6th and later', same: figures(10, 12), cross: figures(110, 112) },
    ]);
    // Every first delivery of a known publish is in exactly one place: the duplicate and the unknown 99 are in none.
    expect(result.latency.same.count).toBe(9);
    expect(result.latency.cross.count).toBe(9);
  });

  it('percentiles are exact (nearest rank) over many deliveries', () => {
    const n = 1000;
    const publishes = Array.from({ length: n }, (_, i) => pub(i + 1, { sentAt: T0 }));
    const a = client(
      'a',
      Array.from({ length: n }, (_, i): Delivery => [i + 1, i + 1, i + 1, 'asia']),
    );
    const result = check(input(publishes, [a]));
    expect(result.latency.same).toEqual({ count: n, p50: 500, p95: 950, p99: 990, max: 1000 });
    expect(result.latency.cross.count).toBe(0);
  });

  it('failover: down → up pairs; an outage that never ended is not a failover time', () => {
    const a = client('a', [], {
      connectivity: [
        { at: T0 + 2000, kind: 'down', region: 'us' },
        { at: T0 + 2500, kind: 'up', region: 'eu' },
        { at: T0 + 5000, kind: 'down', region: 'eu' },
        { at: T0 + 5300, kind: 'up', region: 'eu' },
      ],
    });
    const b = client('b', [], { connectivity: [{ at: T0 + 4100, kind: 'down', region: 'us' }] });
    const result = check(input([], [a, b]));
    expect(result.failover).toEqual({ count: 2, p50: 300, p99: 500, max: 500 });
    // Down at the end of second 1 (a: 2.0–2.5 s), of second 4 (a from 5.0 s, b from 4.1 s) and of second 5 (b never came back).
    expect(result.timeline.map((p) => p.reconnecting)).toEqual([0, 1, 0, 0, 2, 1]);
  });

  it('timeline: deliveries per second and the latency of those arriving in it', () => {
    const publishes = [pub(1), pub(2), pub(3, { sentAt: T0 + 2000 })];
    const a = client('a', [
      [1, 1, 100],
      [2, 2, 150],
      [3, 3, 2400],
    ]);
    const b = client('b', [
      [1, 1, 300, 'eu'],
      [2, 2, 320, 'eu'],
      [3, 3, 2010, 'eu'],
      [3, 3, 2020, 'eu'],
    ]);
    const result = check(input(publishes, [a, b]));
    expect(result.timeline).toEqual([
      { t: 0, delivered: 4, p50: 148, p99: 318, reconnecting: 0 },
      { t: 1, delivered: 0, p50: 0, p99: 0, reconnecting: 0 },
      // The duplicate counts as a delivery, not in the latency (first receipts only).
      { t: 2, delivered: 3, p50: 10, p99: 400, reconnecting: 0 },
    ]);
  });
});
