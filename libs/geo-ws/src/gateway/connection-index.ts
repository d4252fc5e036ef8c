import type { ClientConnection } from './client-connection.js';

/**
 * The open connections of this server by who they are: how many each user (principal id)
 * has, for `limits.maxConnectionsPerUser`. Updated when a connection opens and closes,
 * never per frame or on a timer.
 */
export class ConnectionIndex {
  private readonly perUser = new Map<string, number>();

  /** Open connections of this user on this server. */
  countOf(principalId: string): number {
    return this.perUser.get(principalId) ?? 0;
  }

  added(connection: ClientConnection): void {
    const { id } = connection.principal;
    this.perUser.set(id, this.countOf(id) + 1);
  }

  removed(connection: ClientConnection): void {
    const { id } = connection.principal;
    const count = this.countOf(id) - 1;
    if (count > 0) this.perUser.set(id, count);
    else this.perUser.delete(id);
  }
}

/** The refusal's message, the same at the upgrade (HTTP 429) and for a connection closed with 4008. */
export function tooManyConnections(limit: number): string {
  return `this user has ${limit} connections to this server, its limit; close one first`;
}
