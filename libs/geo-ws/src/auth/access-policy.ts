import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoPrincipal } from './geo-principal.js';
import { STATE_ID_PATTERN, type GeoStateStore } from '../transport/geo-state-store.interface.js';
import { roomAllowed } from './room-patterns.js';

/**
 * How long a "not revoked" answer from the state store is trusted for joins and publishes
 * of an open connection. The bound on how long a revoked token can still act there.
 */
export const REVOCATION_RECHECK_MS = 5000;

/** Tokens whose revocation status is remembered; past this, the stalest entries are dropped. */
const MAX_REMEMBERED_TOKENS = 50_000;

interface RevocationStatus {
  /** When the state store last answered for this token (epoch ms). */
  checkedAt: number;
  revoked: boolean;
  /** A read is under way (at most one per token). */
  reading?: Promise<void>;
}

/**
 * What a principal may do, checked by the server on every join and publish: the
 * token's `regions` and `rooms` claims, a handler's `regions`, and the shared
 * revocation list. The list is read at the handshake and on `geo.auth` (one read each,
 * awaited), for `critical` handlers (one read, awaited), and for other joins and
 * publishes from a status remembered per token and re-read in the background once it is
 * older than {@link REVOCATION_RECHECK_MS}: at most one read per token every 5 s, never
 * on the frame's path.
 */
export class AccessPolicy {
  private readonly revocations = new Map<string, RevocationStatus>();

  constructor(
    private readonly region: string,
    private readonly state: GeoStateStore,
    private readonly recheckMs = REVOCATION_RECHECK_MS,
  ) {}

  /** Whether the principal may connect here at all (checked at the handshake). */
  mayConnect(principal: GeoPrincipal): boolean {
    return !principal.regions || principal.regions.includes(this.region);
  }

  /**
   * At the handshake and on `geo.auth`: the token must not be on the shared revocation
   * list (one read of the state store). Fails closed: when the list cannot be read, the
   * token is refused too (`UNAVAILABLE`, retryable), since it cannot be shown to be valid.
   */
  async assertNotRevoked(principal: GeoPrincipal): Promise<void> {
    const { tokenId } = principal;
    if (!isRevocable(tokenId)) return;
    let revoked: boolean;
    try {
      revoked = await this.read(tokenId);
    } catch {
      throw new GeoProtocolError(GeoErrorCode.UNAVAILABLE, 'the revocation list cannot be read right now; try again');
    }
    if (revoked) throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked');
  }

  /**
   * The token's `regions` and `rooms` claims, for one join or publish, and its revocation
   * as last read (a stale status is re-read in the background; this frame does not wait).
   */
  assertMayUse(principal: GeoPrincipal, room: string, eventId?: string): void {
    if (!this.mayConnect(principal)) {
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not act in region "${this.region}"`, eventId);
    }
    if (!roomAllowed(principal.rooms, room))
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not use room "${room}"`, eventId);
    if (this.knownRevoked(principal)) throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked', eventId);
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
    if (isRevocable(tokenId) && (await this.read(tokenId))) {
      throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked', eventId);
    }
  }

  /** One read of the shared list; the answer is remembered for joins and publishes. */
  private async read(tokenId: string): Promise<boolean> {
    const revoked = await this.state.isRevoked(tokenId);
    this.remember(tokenId, { checkedAt: Date.now(), revoked });
    return revoked;
  }

  /** The remembered status; once it is stale, one background read refreshes it. */
  private knownRevoked(principal: GeoPrincipal): boolean {
    const { tokenId } = principal;
    if (!isRevocable(tokenId)) return false;
    const status = this.revocations.get(tokenId);
    if (status?.revoked) return true;
    if (status && (status.reading || Date.now() - status.checkedAt < this.recheckMs)) return false;
    const entry: RevocationStatus = status ?? { checkedAt: 0, revoked: false };
    entry.reading = this.read(tokenId).then(
      () => undefined,
      () => {
        // Unreadable now (broker down): keep the last answer and try again after a recheck period.
        entry.checkedAt = Date.now();
        entry.reading = undefined;
      },
    );
    if (!status) this.remember(tokenId, entry);
    return false;
  }

  private remember(tokenId: string, status: RevocationStatus): void {
    this.revocations.delete(tokenId); // re-inserted last: the map stays in least-recently-read order
    this.revocations.set(tokenId, status);
    if (this.revocations.size <= MAX_REMEMBERED_TOKENS) return;
    // Forgetting costs one more read for that token (and, for a revoked one, one more action).
    for (const key of this.revocations.keys()) {
      this.revocations.delete(key);
      if (this.revocations.size <= MAX_REMEMBERED_TOKENS * 0.9) break;
    }
  }
}

/** Token ids the state store can hold; others (from a custom authenticator) cannot have been revoked. */
function isRevocable(tokenId: string | undefined): tokenId is string {
  return tokenId !== undefined && STATE_ID_PATTERN.test(tokenId);
}
