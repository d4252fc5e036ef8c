import { describe, expect, it } from '@jest/globals';

import type { Deployment } from '../deployment/deployment.types.js';
import type { ClientPlan, RegionTarget } from '../load/load.types.js';
import { DEFAULT_OPTIONS, type LabOptions } from '../scenarios/lab-options.js';
import { planClients, publisherShift, roomRegions } from './client-plan.js';

/** Only `targetsFor` is read: a target naming the region and the per-region index it was asked for. */
const deployment = {
  targetsFor: (home: string, index: number): RegionTarget[] => [{ region: home, httpUrl: `http://${home}/${index}`, wsUrl: '' }],
} as unknown as Deployment;

function options(over: Partial<LabOptions>): LabOptions {
  return { ...DEFAULT_OPTIONS, regions: ['asia', 'eu', 'us'], ...over };
}

/** Room → region → member count. */
function membersPerRegion(clients: ClientPlan[]): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const client of clients) {
    const room = (counts[client.rooms[0]] ??= {});
    room[client.home] = (room[client.home] ?? 0) + 1;
  }
  return counts;
}

/** The plan as it was before `--affinity`, kept here as the reference the default must still match. */
function spreadPlan(o: LabOptions): { clients: ClientPlan[]; members: Record<string, string[]> } {
  const clients: ClientPlan[] = [];
  const members: Record<string, string[]> = {};
  const perRegion = new Map<string, number>();
  for (let i = 0; i < o.clients; i++) {
    const home = o.regions[i % o.regions.length];
    const index = perRegion.get(home) ?? 0;
    perRegion.set(home, index + 1);
    const room = `room-${Math.floor(i / o.roomSize)}`;
    const roomMembers = (members[room] ??= []);
    const publishes = roomMembers.length < o.publishersPerRoom;
    roomMembers.push(`c${i}`);
    clients.push({ id: `c${i}`, home, targets: deployment.targetsFor(home, index), rooms: [room], publishTo: publishes ? [room] : [] });
  }
  return { clients, members };
}

describe('planClients', () => {
  it('without --affinity: the spread plan, every room over every region, unchanged', () => {
    for (const over of [
      { clients: 1000, roomSize: 50, publishersPerRoom: 3 },
      { clients: 7, roomSize: 3, publishersPerRoom: 1 },
      { clients: 100, roomSize: 30, publishersPerRoom: 2, regions: ['a', 'b'], instances: 2 },
    ]) {
      const o = options(over);
      expect(planClients(o, deployment)).toEqual(spreadPlan(o));
    }
    const plan = planClients(options({ clients: 1000, roomSize: 50 }), deployment);
    expect(membersPerRegion(plan.clients)['room-0']).toEqual({ asia: 17, eu: 17, us: 16 });
    expect(roomRegions(options({}))).toBeUndefined();
  });

  it('--affinity 0.8: round(0.8 × 50) members in the room region, the rest round-robin over the others', () => {
    const o = options({ clients: 300, roomSize: 50, publishersPerRoom: 3, affinity: 0.8 });
    const plan = planClients(o, deployment);
    const counts = membersPerRegion(plan.clients);
    // Room regions round-robin: room-0 asia, room-1 eu, room-2 us, room-3 asia…
    expect(counts['asia:room-0']).toEqual({ asia: 40, eu: 5, us: 5 });
    expect(counts['eu:room-1']).toEqual({ eu: 40, asia: 5, us: 5 });
    expect(counts['us:room-2']).toEqual({ us: 40, asia: 5, eu: 5 });
    expect(counts['asia:room-3']).toEqual({ asia: 40, eu: 5, us: 5 });
    expect(roomRegions(o)).toEqual({
      'asia:room-0': 'asia',
      'eu:room-1': 'eu',
      'us:room-2': 'us',
      'asia:room-3': 'asia',
      'eu:room-4': 'eu',
      'us:room-5': 'us',
    });
    expect(Object.values(plan.members).every((ids) => ids.length === 50)).toBe(true);
  });

  it("--affinity: the room's publishers live in its room region while it has members there", () => {
    const o = options({ clients: 150, roomSize: 50, publishersPerRoom: 3, affinity: 0.8 });
    const regions = roomRegions(o)!;
    const publishers = planClients(o, deployment).clients.filter((client) => client.publishTo.length > 0);
    expect(publishers).toHaveLength(9);
    for (const client of publishers) {
      expect(client.publishTo).toEqual(client.rooms);
      expect(client.home).toBe(regions[client.rooms[0]]);
    }
    // 0.04 × 50 = 2 members in the room region: they publish first, the third publisher comes from elsewhere.
    const few = planClients(options({ clients: 50, roomSize: 50, publishersPerRoom: 3, affinity: 0.04 }), deployment);
    expect(few.clients.filter((client) => client.publishTo.length > 0).map((client) => client.home)).toEqual(['asia', 'asia', 'eu']);
  });

  it('--affinity 1 and 0, and a short last room', () => {
    expect(membersPerRegion(planClients(options({ clients: 60, roomSize: 30, affinity: 1 }), deployment).clients)).toEqual({
      'asia:room-0': { asia: 30 },
      'eu:room-1': { eu: 30 },
    });
    expect(membersPerRegion(planClients(options({ clients: 40, roomSize: 40, affinity: 0 }), deployment).clients)).toEqual({
      'asia:room-0': { eu: 20, us: 20 },
    });
    // 70 clients in rooms of 50: the last room has 20, round(0.5 × 20) = 10 of them in eu.
    expect(membersPerRegion(planClients(options({ clients: 70, roomSize: 50, affinity: 0.5 }), deployment).clients)).toEqual({
      'asia:room-0': { asia: 25, eu: 13, us: 12 },
      'eu:room-1': { eu: 10, asia: 5, us: 5 },
    });
    // One region: every member is in it.
    expect(
      membersPerRegion(planClients(options({ clients: 10, roomSize: 10, affinity: 0.3, regions: ['solo'] }), deployment).clients),
    ).toEqual({ 'solo:room-0': { solo: 10 } });
  });

  it('--affinity: clients of one region still spread over its instances, by a per-region index', () => {
    const plan = planClients(options({ clients: 100, roomSize: 50, affinity: 0.8 }), deployment);
    for (const region of ['asia', 'eu', 'us']) {
      const urls = plan.clients.filter((client) => client.home === region).map((client) => client.targets[0].httpUrl);
      expect(urls).toEqual(urls.map((_, index) => `http://${region}/${index}`));
    }
  });
});

describe('publisherShift (home-move)', () => {
  const regional = options({ clients: 150, roomSize: 50, publishersPerRoom: 1, affinity: 0.8 });

  it("hands each room's publishers over to as many members of the next region after its room region", () => {
    expect(publisherShift(regional)).toEqual([
      // 40 members in the room region first, then the others round-robin from the next region on.
      { room: 'asia:room-0', from: 'asia', to: 'eu', before: ['c0'], after: ['c40'] },
      { room: 'eu:room-1', from: 'eu', to: 'us', before: ['c50'], after: ['c90'] },
      { room: 'us:room-2', from: 'us', to: 'asia', before: ['c100'], after: ['c140'] },
    ]);
  });

  it("before: the plan's publishers; after: members of the next region that did not publish, as many", () => {
    const o = options({ clients: 300, roomSize: 50, publishersPerRoom: 3, affinity: 0.8 });
    const clients = new Map(planClients(o, deployment).clients.map((client) => [client.id, client]));
    for (const { room, from, to, before, after } of publisherShift(o)) {
      expect(before.map((id) => clients.get(id)?.publishTo)).toEqual([[room], [room], [room]]);
      expect(before.map((id) => clients.get(id)?.home)).toEqual([from, from, from]);
      expect(after).toHaveLength(3);
      for (const id of after) {
        expect(clients.get(id)).toMatchObject({ home: to, rooms: [room], publishTo: [] });
      }
    }
  });

  it('a publisher already living in the next region is not counted among the new ones', () => {
    // 0.04 × 50 = 2 members in asia (c0, c1); c2 (eu) is the third publisher; eu's next non-publishers are c4, c6, c8.
    const [room] = publisherShift(options({ clients: 50, roomSize: 50, publishersPerRoom: 3, affinity: 0.04 }));
    expect(room).toEqual({ room: 'asia:room-0', from: 'asia', to: 'eu', before: ['c0', 'c1', 'c2'], after: ['c4', 'c6', 'c8'] });
  });

  it("the next region never has fewer of a room's members than another region", () => {
    // 3 members outside eu's room-1: us (its next region) gets 2, asia 1.
    const counts = membersPerRegion(planClients(options({ clients: 20, roomSize: 10, affinity: 0.7 }), deployment).clients);
    expect(counts['eu:room-1']).toEqual({ eu: 7, us: 2, asia: 1 });
  });

  it('throws, saying why, without --affinity, with one region, or when a room has too few members in its next region', () => {
    expect(() => publisherShift(options({ clients: 100, roomSize: 50 }))).toThrow(/--affinity/);
    expect(() => publisherShift(options({ clients: 100, roomSize: 50, affinity: 0.8, regions: ['solo'] }))).toThrow(/two regions/);
    expect(() => publisherShift(options({ clients: 100, roomSize: 50, affinity: 1 }))).toThrow(
      /^asia:room-0 has 0 non-publishing members in eu \(its next region after asia\) to take over from its 1 publishers/,
    );
    // A short last room: 5 members, 4 in us, 1 in asia (its next region), 2 publishers.
    expect(() => publisherShift(options({ clients: 105, roomSize: 50, publishersPerRoom: 2, affinity: 0.8 }))).toThrow(
      /^us:room-2 has 1 non-publishing members in asia/,
    );
  });
});
