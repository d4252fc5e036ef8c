import { afterEach, describe, expect, it } from '@jest/globals';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { waitFor } from '../testing/wait-for.js';
import { globalLog } from '../transport/log-ref.js';
import { MemoryNetwork } from '../transport/memory/memory-network.js';
import { MemoryTransport } from '../transport/memory/memory.transport.js';
import { RoomFeeds } from './room-feeds.js';
import type { FeedMember, JoinOutcome } from './room-feed.js';

const context = { regions: ['eu', 'us'], dedupWindowMs: 120_000, retention: { maxEvents: 1000, maxAgeMs: 3_600_000 } };

class Member implements FeedMember {
  readonly events: GeoLoggedEnvelope[] = [];
  deliver(event: GeoLoggedEnvelope) {
    this.events.push(event);
  }
  deliverEphemeral() {}
  evicted() {}
}

describe('RoomFeeds', () => {
  const transports: MemoryTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
  });

  async function setup(delayMs = 0, retention = context.retention) {
    const network = new MemoryNetwork({ delayMs });
    const writer = new MemoryTransport(network, { ...context, retention, region: 'eu' });
    const reader = new MemoryTransport(network, { ...context, retention, region: 'us' });
    transports.push(writer, reader);
    await writer.connect();
    await reader.connect();
    return { writer, reader, feeds: new RoomFeeds(reader, 7) };
  }
  const log = globalLog('room');
  let n = 0;
  const append = (transport: MemoryTransport) =>
    transport.append(log, { event_id: `e${++n}`, room_id: 'room', type: 't', sender: 's', timestamp: new Date().toISOString(), region: 'eu', data: n });

  it('replays (since, live] in pages while holding live events, then delivers live ones: no gap, no duplicate', async () => {
    const { writer, feeds } = await setup(5);
    for (let i = 0; i < 30; i++) await append(writer);
    const first = new Member();
    await feeds.join(log, first, {}, () => undefined);
    const outcomes: JoinOutcome[] = [];
    const late = new Member();
    const writing = (async () => {
      for (let i = 0; i < 30; i++) await append(writer);
    })();
    await feeds.join(log, late, { since: 3 }, (outcome) => outcomes.push(outcome));
    await writing;
    await waitFor(() => late.events.length === 57, '57 events');
    expect(late.events.map((event) => event.seq)).toEqual(Array.from({ length: 57 }, (_, i) => i + 4));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0].recovered).toBe(true);
    expect(feeds.count).toBe(1);
  });

  it('a client ahead of this node (it came from a region further along) gets nothing twice', async () => {
    const { writer, feeds } = await setup(20);
    for (let i = 0; i < 5; i++) await append(writer);
    const member = new Member();
    await feeds.join(log, member, { since: 8 }, () => undefined);
    for (let i = 0; i < 5; i++) await append(writer);
    await waitFor(() => member.events.length === 2, 'events 9 and 10');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(member.events.map((event) => event.seq)).toEqual([9, 10]);
  });

  it('past retention: recovered false, then the retained events and live ones', async () => {
    const { writer, feeds } = await setup(0, { maxEvents: 5, maxAgeMs: 3_600_000 });
    for (let i = 0; i < 12; i++) await append(writer);
    const member = new Member();
    const outcomes: JoinOutcome[] = [];
    await feeds.join(log, member, { since: 2 }, (outcome) => outcomes.push(outcome));
    await append(writer);
    await waitFor(() => member.events.length === 6, 'retained and live events');
    expect(outcomes[0]).toMatchObject({ recovered: false, seq: 12 });
    expect(member.events.map((event) => event.seq)).toEqual([8, 9, 10, 11, 12, 13]);
  });

  it('closes the tail when the last member leaves', async () => {
    const { feeds } = await setup();
    const a = new Member();
    const b = new Member();
    await feeds.join(log, a, {}, () => undefined);
    await feeds.join(log, b, {}, () => undefined);
    feeds.leave(log, a);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(feeds.count).toBe(1);
    feeds.leave(log, b);
    await waitFor(() => feeds.count === 0, 'the feed to close');
  });
});
