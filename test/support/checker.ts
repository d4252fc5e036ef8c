import type { GeoEnvelope } from '@geo-ws/nest';

import { check } from '../../apps/lab/src/check/checker.js';
import type { CheckInput } from '../../apps/lab/src/check/check.types.js';
import type { ClientLog, PublishLog } from '../../apps/lab/src/load/load.types.js';

/** What the consistency checker found across every client's log of one room. */
export interface CheckReport {
  clients: number;
  events: number;
  /** (client, event of the log) pairs the client never received. */
  lost: number;
  /** Deliveries of an event the client had already received. */
  duplicated: number;
  /** Adjacent pairs in a client's log whose seq did not increase. */
  reordered: number;
  /** Clients whose log is not exactly the authoritative one (missing, extra, repeated, misordered or re-sequenced events). */
  divergent: number;
}

/**
 * The e2e tests' view of the lab's checker (apps/lab/src/check/checker.ts), so both judge
 * logs with the same code: the authoritative log (the transport's) becomes the acked
 * publishes of one room, each received log a member's log of that room.
 */
export function checkLogs(authoritative: GeoEnvelope[], received: GeoEnvelope[][]): CheckReport {
  const room = 'room';
  const numbers = new Map<string, number>();
  const numberOf = (id: string): number => {
    let n = numbers.get(id);
    if (n === undefined) numbers.set(id, (n = numbers.size));
    return n;
  };
  const publishes: PublishLog[] = authoritative.map((event) => ({
    number: numberOf(event.event_id),
    room,
    publisher: event.sender,
    region: event.region,
    sentAt: 0,
    ackedAt: 0,
    ackSeq: event.seq ?? undefined,
  }));
  const known = numbers.size;
  const clients: ClientLog[] = received.map((log, i) => ({
    id: `c${i}`,
    home: '',
    rooms: [
      {
        room,
        numbers: log.map((event) => numberOf(event.event_id)),
        seqs: log.map((event) => event.seq ?? -1),
        receivedAt: log.map(() => 0),
        regions: log.map((event) => event.region),
      },
    ],
    connectivity: [],
    gaps: 0,
    errors: {},
  }));
  const input = (members: ClientLog[]): CheckInput => ({
    impl: 'geo',
    publishes,
    clients: members,
    members: { [room]: members.map((client) => client.id) },
    contiguousSeqs: true,
    startedAt: 0,
  });
  const { anomalies } = check(input(clients));
  const divergent = clients.filter((client) => {
    if (client.rooms[0].numbers.some((n) => n >= known)) return true;
    const one = check(input([client])).anomalies;
    return one.lost + one.duplicated + one.orderViolations + one.appliedTwice > 0;
  }).length;
  return {
    clients: received.length,
    events: authoritative.length,
    lost: anomalies.lost,
    duplicated: anomalies.duplicated,
    reordered: anomalies.orderViolations,
    divergent,
  };
}
