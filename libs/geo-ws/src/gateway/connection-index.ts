import { isRevocable } from '../auth/access-policy.js';
import type { GeoPrincipal } from '../auth/geo-principal.js';
import type { ClientConnection } from './client-connection.js';

/**
 * The open connections of this server by who they are: how many each user (principal id)
 * has, for `limits.maxConnectionsPerUser`, and which hold each revocable token, so a
 * revocation closes them without a walk over every connection. Updated when a connection
 * opens, closes or changes its token (`geo.auth`), never per frame or on a timer.
 */
export class ConnectionIndex {
  private readonly perUser = new Map<string, number>();
  /** Mostly one connection per token: held as it is, a set only for tokens shared by several. */
  private readonly perToken = new Map<string, ClientConnection | Set<ClientConnection>>();

  /** Open connections of this user on this server. */
  countOf(principalId: string): number {
    return this.perUser.get(principalId) ?? 0;
  }

  /** Open connections that hold this token now. */
  withToken(tokenId: string): ClientConnection[] {
    const held = this.perToken.get(tokenId);
    if (held === undefined) return [];
    return held instanceof Set ? [...held] : [held];
  }

  /** The distinct revocable tokens held by open connections. */
  tokenIds(): string[] {
    return [...this.perToken.keys()];
  }

  added(connection: ClientConnection): void {
    const { id, tokenId } = connection.principal;
    this.perUser.set(id, this.countOf(id) + 1);
    this.holds(connection, tokenId);
  }

  removed(connection: ClientConnection): void {
    const { id, tokenId } = connection.principal;
    const count = this.countOf(id) - 1;
    if (count > 0) this.perUser.set(id, count);
    else this.perUser.delete(id);
    this.lets(connection, tokenId);
  }

  /** `geo.auth` gave the connection a new principal (same user, maybe another token). */
  retokened(connection: ClientConnection, previous: GeoPrincipal): void {
    if (previous.tokenId === connection.principal.tokenId) return;
    this.lets(connection, previous.tokenId);
    this.holds(connection, connection.principal.tokenId);
  }

  private holds(connection: ClientConnection, tokenId: string | undefined): void {
    if (!isRevocable(tokenId)) return;
    const held = this.perToken.get(tokenId);
    if (held === undefined) this.perToken.set(tokenId, connection);
    else if (held instanceof Set) held.add(connection);
    else if (held !== connection) this.perToken.set(tokenId, new Set([held, connection]));
  }

  private lets(connection: ClientConnection, tokenId: string | undefined): void {
    if (!isRevocable(tokenId)) return;
    const held = this.perToken.get(tokenId);
    if (held === connection) this.perToken.delete(tokenId);
    else if (held instanceof Set) {
      held.delete(connection);
      if (held.size === 1) this.perToken.set(tokenId, held.values().next().value!);
    }
  }
}

/** The refusal's message, the same at the upgrade (HTTP 429) and for a connection closed with 4008. */
export function tooManyConnections(limit: number): string {
  return `this user has ${limit} connections to this server, its limit; close one first`;
}
