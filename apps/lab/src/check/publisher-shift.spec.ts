import { describe, expect, it } from '@jest/globals';

import type { ClientLog, PublishLog } from '../load/load.types.js';
import { checkPublisherShift } from './publisher-shift.js';

const T0 = 1_000_000;

function publish(number: number, room: string, region: string, sentS: number): PublishLog {
  return { number, room, publisher: `p-${region}`, region, sentAt: T0 + sentS * 1000, ackedAt: T0 + sentS * 1000 + 5 };
}

/** A client of one room that received `arrivals` ([number, latency ms]) in that order. */
function client(id: string, room: string, arrivals: [number, number][], sent: Map<number, number>): ClientLog {
  return {
    id,
    home: 'asia',
    rooms: [
      {
        room,
        numbers: arrivals.map(([number]) => number),
        seqs: arrivals.map(() => -1),
        receivedAt: arrivals.map(([number, ms]) => (sent.get(number) ?? 0) + ms),
        regions: arrivals.map(() => 'asia'),
      },
    ],
    connectivity: [],
    gaps: 0,
    errors: {},
  };
}

describe('checkPublisherShift', () => {
  // room-0's publishers move from asia to eu at 10 s; "during the move" is 10..20 s.
  const shift = {
    atS: 10,
    duringS: 10,
    rooms: [
      { room: 'room-0', from: 'asia', to: 'eu' },
      { room: 'room-1', from: 'eu', to: 'us' },
    ],
  };
  const publishes = [
    publish(1, 'room-0', 'asia', 2),
    publish(2, 'room-0', 'asia', 9.9),
    publish(3, 'room-0', 'eu', 10),
    publish(4, 'room-0', 'eu', 20),
    publish(5, 'room-0', 'eu', 30),
    publish(6, 'room-1', 'eu', 5),
    publish(7, 'room-1', 'us', 15),
  ];
  const sent = new Map(publishes.map((p) => [p.number, p.sentAt]));
  const clients = [
    // A duplicate of 3 (second arrival, 900 ms) does not count: first deliveries only, as in the checker.
    client(
      'c0',
      'room-0',
      [
        [1, 10],
        [2, 20],
        [3, 300],
        [3, 900],
        [4, 400],
        [5, 50],
      ],
      sent,
    ),
    client(
      'c1',
      'room-0',
      [
        [1, 12],
        [2, 22],
        [3, 500],
        [4, 100],
        [5, 60],
      ],
      sent,
    ),
    client(
      'c2',
      'room-1',
      [
        [6, 30],
        [7, 700],
      ],
      sent,
    ),
    // An unknown number (nobody logged publishing it) has no latency.
    client('c3', 'room-1', [[99, 1]], sent),
  ];
  const result = checkPublisherShift({ shift, publishes, clients, startedAt: T0 });

  it("splits each room's latency: events published during the move, and the whole run", () => {
    const [room0, room1] = result.rooms;
    expect(room0).toMatchObject({ room: 'room-0', from: 'asia', to: 'eu' });
    // During: numbers 3 (300, 500) and 4 (400, 100), sent at 10 s and 20 s, both ends included.
    expect(room0.during).toEqual({ count: 4, p50: 300, p95: 500, p99: 500, max: 500 });
    expect(room0.whole).toMatchObject({ count: 10, max: 500 });
    expect(room1.during).toEqual({ count: 1, p50: 700, p95: 700, p99: 700, max: 700 });
    expect(room1.whole.count).toBe(2);
  });

  it('merges the rooms for the run-wide figures', () => {
    expect(result).toMatchObject({ atS: 10, duringS: 10 });
    expect(result.during).toEqual({ count: 5, p50: 400, p95: 700, p99: 700, max: 700 });
    expect(result.whole.count).toBe(12);
  });

  it('counts publishes per publisher region before and after the shift, the room regions first', () => {
    expect(result.publishesByRegion).toEqual([
      { region: 'asia', before: 2, after: 0 },
      { region: 'eu', before: 1, after: 3 },
      { region: 'us', before: 0, after: 1 },
    ]);
  });
});
