import type { Deployment } from '../deployment/deployment.types.js';
import type { ClientPlan } from '../load/load.types.js';
import type { LabOptions } from '../scenarios/lab-options.js';

export interface LoadPlan {
  clients: ClientPlan[];
  /** Room → member ids: every member joins before publishing starts. */
  members: Record<string, string[]>;
}

/** One client before any address is known: where it lives, its room, and whether it publishes from the start. */
interface PlannedMember {
  id: string;
  home: string;
  /** Its place among the clients of its home region, for spreading them over the region's instances. */
  regionIndex: number;
  room: string;
  publishes: boolean;
}

/**
 * One room's publishers moving to another region mid-run (`home-move`): `before` stop
 * publishing, `after` (as many, living in `to`) start.
 */
export interface RoomShift {
  room: string;
  /** The room region, where its publishers live until the shift. */
  from: string;
  /** The next region after it (regions[(i + 1) mod n]), where its publishers live after. */
  to: string;
  before: string[];
  after: string[];
}

/**
 * Fills rooms in order; the first `publishersPerRoom` members of each room publish, and
 * clients of one region are spread over its instances.
 *
 * Without `affinity`, clients are spread over regions round-robin, so every room holds
 * members from every region (a room of 50 over 3 regions: 17/17/16). With it, each room
 * has a room region (`roomRegions`): round(affinity × its size) members live there and come
 * first, so its publishers are taken from them first; the rest spread round-robin over the
 * other regions.
 */
export function planClients(options: LabOptions, deployment: Deployment): LoadPlan {
  const clients: ClientPlan[] = [];
  const members: Record<string, string[]> = {};
  for (const { id, home, regionIndex, room, publishes } of planMembers(options)) {
    (members[room] ??= []).push(id);
    clients.push({ id, home, targets: deployment.targetsFor(home, regionIndex), rooms: [room], publishTo: publishes ? [room] : [] });
  }
  return { clients, members };
}

/**
 * Follow the sun: in each room, the members publishing from the start hand over to as many
 * members living in the next region after the room region (room-0's asia → eu, room-1's
 * eu → us, room-2's us → asia with the default regions), taken in plan order among those
 * that did not publish already. Needs `affinity` and two regions or more; throws, naming
 * the room, when a room has too few members in its next region.
 */
export function publisherShift(options: LabOptions): RoomShift[] {
  const regions = roomRegions(options);
  if (!regions) throw new Error('the publisher shift needs rooms with a room region: give --affinity (e.g. 0.8)');
  if (options.regions.length < 2) throw new Error('the publisher shift needs two regions or more (--regions)');
  const byRoom = new Map<string, PlannedMember[]>();
  for (const member of planMembers(options)) {
    const list = byRoom.get(member.room) ?? [];
    byRoom.set(member.room, list);
    list.push(member);
  }
  return [...byRoom].map(([room, members]) => shiftOf(options, room, regions[room], members));
}

function shiftOf(options: LabOptions, room: string, from: string, members: PlannedMember[]): RoomShift {
  const to = nextRegion(options.regions, from);
  const before = members.filter((member) => member.publishes).map((member) => member.id);
  const candidates = members.filter((member) => member.home === to && !member.publishes).map((member) => member.id);
  if (candidates.length < before.length) {
    throw new Error(
      `${room} has ${candidates.length} non-publishing members in ${to} (its next region after ${from}) to take over from its ` +
        `${before.length} publishers: lower --affinity, raise --room-size, or make --clients a multiple of --room-size`,
    );
  }
  return { room, from, to, before, after: candidates.slice(0, before.length) };
}

function nextRegion(regions: string[], region: string): string {
  return regions[(regions.indexOf(region) + 1) % regions.length];
}

/** Room → its room region (asia:room-0 → regions[0], eu:room-1 → regions[1], …); none without `affinity`. */
export function roomRegions(options: LabOptions): Record<string, string> | undefined {
  if (options.affinity === undefined) return undefined;
  const regions: Record<string, string> = {};
  for (let r = 0; r < roomCount(options); r++) regions[roomName(options, r)] = options.regions[r % options.regions.length];
  return regions;
}

/** Every client in plan order: its home, its room, and whether it is among its room's first `publishersPerRoom`. */
function planMembers(options: LabOptions): PlannedMember[] {
  const homes = options.affinity === undefined ? spreadHomes(options) : regionalHomes(options, options.affinity);
  const perRegion = new Map<string, number>();
  const perRoom = new Map<string, number>();
  return homes.map((home, i) => {
    const regionIndex = perRegion.get(home) ?? 0;
    perRegion.set(home, regionIndex + 1);
    const room = roomName(options, Math.floor(i / options.roomSize));
    const place = perRoom.get(room) ?? 0;
    perRoom.set(room, place + 1);
    return { id: `c${i}`, home, regionIndex, room, publishes: place < options.publishersPerRoom };
  });
}

/** `room-<index>`; with `affinity`, prefixed by the room region (`eu:room-1`), as an app naming regional rooms would. */
function roomName(options: LabOptions, index: number): string {
  return options.affinity === undefined ? `room-${index}` : `${options.regions[index % options.regions.length]}:room-${index}`;
}

function roomCount(options: LabOptions): number {
  return Math.ceil(options.clients / options.roomSize);
}

/** Client i lives in regions[i mod n], whatever its room. */
function spreadHomes(options: LabOptions): string[] {
  return Array.from({ length: options.clients }, (_, i) => options.regions[i % options.regions.length]);
}

/**
 * Each room's members in plan order: its room region's share first, then the others
 * round-robin starting with the next region after it, so that region never has fewer of
 * the room's members than another (a publisher shift hands over to it).
 */
function regionalHomes(options: LabOptions, affinity: number): string[] {
  const { regions, roomSize } = options;
  const homes: string[] = [];
  for (let r = 0; r < roomCount(options); r++) {
    const roomRegion = r % regions.length;
    const others = Array.from({ length: regions.length - 1 }, (_, k) => regions[(roomRegion + 1 + k) % regions.length]);
    // The last room may be short: the share applies to the members it has.
    const size = Math.min(roomSize, options.clients - r * roomSize);
    const local = Math.round(affinity * size);
    for (let j = 0; j < size; j++) homes.push(j < local || others.length === 0 ? regions[roomRegion] : others[(j - local) % others.length]);
  }
  return homes;
}
