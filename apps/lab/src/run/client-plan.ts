import type { Deployment } from '../deployment/deployment.types.js';
import type { ClientPlan } from '../load/load.types.js';
import type { LabOptions } from '../scenarios/lab-options.js';

export interface LoadPlan {
  clients: ClientPlan[];
  /** Room → member ids: every member joins before publishing starts. */
  members: Record<string, string[]>;
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
  const homes = options.affinity === undefined ? spreadHomes(options) : regionalHomes(options, options.affinity);
  const clients: ClientPlan[] = [];
  const members: Record<string, string[]> = {};
  const perRegion = new Map<string, number>();
  for (let i = 0; i < options.clients; i++) {
    const home = homes[i];
    const index = perRegion.get(home) ?? 0;
    perRegion.set(home, index + 1);
    const room = roomName(Math.floor(i / options.roomSize));
    const id = `c${i}`;
    const roomMembers = (members[room] ??= []);
    const publishes = roomMembers.length < options.publishersPerRoom;
    roomMembers.push(id);
    clients.push({ id, home, targets: deployment.targetsFor(home, index), rooms: [room], publishTo: publishes ? [room] : [] });
  }
  return { clients, members };
}

/** Room → its room region (room-0 → regions[0], room-1 → regions[1], …); none without `affinity`. */
export function roomRegions(options: LabOptions): Record<string, string> | undefined {
  if (options.affinity === undefined) return undefined;
  const regions: Record<string, string> = {};
  for (let r = 0; r < roomCount(options); r++) regions[roomName(r)] = options.regions[r % options.regions.length];
  return regions;
}

function roomName(index: number): string {
  return `room-${index}`;
}

function roomCount(options: LabOptions): number {
  return Math.ceil(options.clients / options.roomSize);
}

/** Client i lives in regions[i mod n], whatever its room. */
function spreadHomes(options: LabOptions): string[] {
  return Array.from({ length: options.clients }, (_, i) => options.regions[i % options.regions.length]);
}

/** Each room's members in plan order: its room region's share first, then the others round-robin. */
function regionalHomes(options: LabOptions, affinity: number): string[] {
  const { regions, roomSize } = options;
  const homes: string[] = [];
  for (let r = 0; r < roomCount(options); r++) {
    const roomRegion = r % regions.length;
    const others = regions.filter((_, k) => k !== roomRegion);
    // The last room may be short: the share applies to the members it has.
    const size = Math.min(roomSize, options.clients - r * roomSize);
    const local = Math.round(affinity * size);
    for (let j = 0; j < size; j++) homes.push(j < local || others.length === 0 ? regions[roomRegion] : others[(j - local) % others.length]);
  }
  return homes;
}
