import type { Deployment } from '../deployment/deployment.types.js';
import type { ClientPlan } from '../load/load.types.js';
import type { LabOptions } from '../scenarios/lab-options.js';

export interface LoadPlan {
  clients: ClientPlan[];
  /** Room → member ids: every member joins before publishing starts. */
  members: Record<string, string[]>;
}

/**
 * Spreads clients over regions round-robin and fills rooms in order, so every room holds
 * members from every region (a room of 50 over 3 regions: 17/17/16). The first
 * `publishersPerRoom` members of each room publish. Clients of one region are spread over
 * its instances.
 */
export function planClients(options: LabOptions, deployment: Deployment): LoadPlan {
  const clients: ClientPlan[] = [];
  const members: Record<string, string[]> = {};
  const perRegion = new Map<string, number>();
  for (let i = 0; i < options.clients; i++) {
    const home = options.regions[i % options.regions.length];
    const index = perRegion.get(home) ?? 0;
    perRegion.set(home, index + 1);
    const room = `room-${Math.floor(i / options.roomSize)}`;
    const id = `c${i}`;
    const roomMembers = (members[room] ??= []);
    const publishes = roomMembers.length < options.publishersPerRoom;
    roomMembers.push(id);
    clients.push({ id, home, targets: deployment.targetsFor(home, index), rooms: [room], publishTo: publishes ? [room] : [] });
  }
  return { clients, members };
}
