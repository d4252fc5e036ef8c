import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoPrincipal } from '../gateway/geo-principal.js';
import type { GeoStateStore } from '../transport/geo-state-store.interface.js';
import { roomAllowed } from './jwt-authenticator.js';

/**
 * What a principal may do, checked by the server on every join and publish: the
 * token's `regions` and `rooms` claims, a handler's `regions`, and, for `critical`
 * handlers, a fresh look at expiry and the shared revocation list.
 */
export class AccessPolicy {
  constructor(
    private readonly region: string,
    private readonly state: GeoStateStore,
  ) {}

  /** Whether the principal may connect here at all (checked at the handshake). */
  mayConnect(principal: GeoPrincipal): boolean {
    return !principal.regions || principal.regions.includes(this.region);
  }

  /** The token's `regions` and `rooms` claims, for one join or publish. */
  assertMayUse(principal: GeoPrincipal, room: string, eventId?: string): void {
    if (!this.mayConnect(principal)) {
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not act in region "${this.region}"`, eventId);
    }
    if (!roomAllowed(principal.rooms, room)) throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not use room "${room}"`, eventId);
  }

  /** A handler's `regions` (data residency). */
  assertEventAllowedHere(event: string, regions: string[] | undefined, eventId: string): void {
    if (regions && !regions.includes(this.region)) {
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `"${event}" may only be published in ${regions.join(', ')}`, eventId);
    }
  }

  /**
   * `critical` actions re-check the credential at the moment they run: not expired, and
   * not on the shared revocation list (read from the transport's state store, so a
   * revocation in any region applies at once).
   */
  async revalidate(principal: GeoPrincipal, eventId: string): Promise<void> {
    const { expiresAt, tokenId } = principal;
    if (expiresAt !== undefined && expiresAt <= Date.now()) {
      throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token expired; refresh it with geo.auth', eventId);
    }
    if (tokenId && (await this.state.isRevoked(tokenId))) {
      throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked', eventId);
    }
  }
}
