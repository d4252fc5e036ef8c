import { Logger } from '@nestjs/common';
import type { GeoPresenceMember, GeoStateStore } from '../transport/geo-state-store.interface.js';

/**
 * Who is in which room, across regions: each instance writes an entry per (connection,
 * room) to the transport's state store and refreshes it every third of its TTL, so
 * members of a crashed instance disappear within one TTL. Best effort: a failed write
 * is logged and retried at the next beat, never failing a join.
 */
export class RoomPresence {
  private readonly logger = new Logger(RoomPresence.name);
  private readonly members = new Map<string, { room: string; member: GeoPresenceMember }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: GeoStateStore,
    private readonly ttlMs: number,
  ) {
    this.timer = setInterval(() => this.beat(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  joined(room: string, member: GeoPresenceMember): void {
    this.members.set(`${member.id}\u0000${room}`, { room, member });
    void this.store.touchPresence(room, member, this.ttlMs).catch((error: unknown) => this.warn(error));
  }

  left(room: string, memberId: string): void {
    if (!this.members.delete(`${memberId}\u0000${room}`)) return;
    void this.store.removePresence(room, memberId).catch((error: unknown) => this.warn(error));
  }

  list(room: string): Promise<GeoPresenceMember[]> {
    return this.store.presence(room);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private beat(): void {
    for (const { room, member } of this.members.values()) {
      void this.store.touchPresence(room, member, this.ttlMs).catch((error: unknown) => this.warn(error));
    }
  }

  private warn(error: unknown): void {
    this.logger.warn(`presence not updated: ${error instanceof Error ? error.message : String(error)}`);
  }
}
