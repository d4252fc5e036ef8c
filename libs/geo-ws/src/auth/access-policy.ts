import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoPrincipal } from './geo-principal.js';
import { STATE_ID_PATTERN, type GeoStateStore } from '../transport/geo-state-store.interface.js';
import { roomAllowed } from './room-patterns.js';

/**
 * How long a "not revoked" answer from the state store is trusted for joins and publishes
 * of an open connection: a frame later than this after the last read waits for a new one.
 */
export const REVOCATION_RECHECK_MS = 5000;

/** A status this close to stale is read again in the background by the frame that sees it. */
const REFRESH_AHEAD_MS = 1000;

/** Tokens whose revocation status is remembered; past this, the stalest entries are dropped. */
const MAX_REMEMBERED_TOKENS = 50_000;

/** Reads in flight at once when the statuses of many tokens are read again (`recheck`). */
const RECHECK_BATCH = 64;

interface RevocationStatus {
  /** When the state store last answered for this token, or failed to (epoch ms). */
  checkedAt: number;
  /** Once true, for good: a revocation lasts until the token expires. */
  revoked: boolean;
  /** The read under way (at most one per token), shared by every frame that waits for it. */
  reading?: Promise<boolean>;
}

/**
 * What a principal may do, checked by the server on every join and publish: the
 * token's `regions` and `rooms` claims, a handler's `regions`, and the shared
 * revocation list. The list is read at the handshake and on `geo.auth` (one read each,
 * awaited), for `critical` handlers (one read, awaited), and for other joins and
 * publishes from a status remembered per token: fresh (read within
 * {@link REVOCATION_RECHECK_MS}), it costs a map lookup; stale, the frame waits for one read,
 * shared by the frames of that token meanwhile. A revocation heard from the state store's
 * channel (or made on this instance) is remembered at once. Whenever this instance learns
 * that a token is revoked, `onRevoked` is told (the server closes its connections).
 */
export class AccessPolicy {
  private readonly revocations = new Map<string, RevocationStatus>();

  constructor(
    private readonly region: string,
    private readonly state: GeoStateStore,
    private readonly recheckMs = REVOCATION_RECHECK_MS,
    /** Called when this instance learns that a token is revoked (once per token and instance while it is remembered). */
    private readonly onRevoked?: (tokenId: string) => void,
  ) {
    this.refreshAheadMs = Math.min(REFRESH_AHEAD_MS, recheckMs / 2);
  }

  /** How long before a status goes stale a frame starts its next read (without waiting for it). */
  private readonly refreshAheadMs: number;

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
   * The token's `regions` and `rooms` claims, for one join or publish, and its revocation.
   * Returns nothing when the remembered status is fresh (the hot path: no promise), or a
   * promise when the frame must wait for a read; either way it throws or rejects with
   * `UNAUTHORIZED` for a revoked token.
   */
  assertMayUse(principal: GeoPrincipal, room: string, eventId?: string): void | Promise<void> {
    if (!this.mayConnect(principal)) {
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not act in region "${this.region}"`, eventId);
    }
    if (!roomAllowed(principal.rooms, room))
      throw new GeoProtocolError(GeoErrorCode.FORBIDDEN, `this token may not use room "${room}"`, eventId);
    const revoked = this.knownRevoked(principal);
    if (revoked === false) return;
    if (revoked === true) throw revokedError(eventId);
    return revoked.then((answer) => {
      if (answer) throw revokedError(eventId);
    });
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
    if (isRevocable(tokenId) && (await this.read(tokenId))) throw revokedError(eventId);
  }

  /**
   * A revocation this instance was told of (its own `revoke()`, the state store's channel):
   * remembered at once, for the next frame of every connection with this token.
   */
  markRevoked(tokenId: string): void {
    if (!isRevocable(tokenId)) return;
    const status = this.revocations.get(tokenId);
    if (status?.revoked) return;
    if (status) status.revoked = true;
    this.remember(tokenId, status ?? { checkedAt: Date.now(), revoked: true });
    this.onRevoked?.(tokenId);
  }

  /**
   * Reads the statuses of these tokens again, `RECHECK_BATCH` at a time (after the
   * revocation channel may have missed announcements). A token found revoked is told to
   * `onRevoked`; one that cannot be read keeps its last answer.
   */
  async recheck(tokenIds: Iterable<string>): Promise<void> {
    const batch: string[] = [];
    const flush = async () => {
      await Promise.all(batch.splice(0).map((tokenId) => this.read(tokenId).catch(() => undefined)));
    };
    for (const tokenId of tokenIds) {
      if (!isRevocable(tokenId)) continue;
      batch.push(tokenId);
      if (batch.length >= RECHECK_BATCH) await flush();
    }
    await flush();
  }

  /** One read of the shared list; the answer is remembered for joins and publishes. */
  private async read(tokenId: string): Promise<boolean> {
    const answer = await this.state.isRevoked(tokenId);
    return this.answered(tokenId, this.revocations.get(tokenId) ?? { checkedAt: 0, revoked: false }, answer);
  }

  /** Remembers an answer of the state store; "revoked" is never taken back (a read that started before a revocation may answer after it). */
  private answered(tokenId: string, status: RevocationStatus, revoked: boolean): boolean {
    const learned = revoked && !status.revoked;
    status.checkedAt = Date.now();
    status.revoked ||= revoked;
    this.remember(tokenId, status);
    if (learned) this.onRevoked?.(tokenId);
    return status.revoked;
  }

  /**
   * The remembered status: `true` or `false` when it can be trusted now (revoked, or read
   * within the recheck period), else the read this frame waits for, started or shared.
   * A frame in the last part of the period starts the next read without waiting for it,
   * so a token in steady use is read about once a period and its frames never wait (a
   * wait costs a round trip to the state store's region: the lab saw one publish in
   * eleven of each publisher delayed by it).
   */
  private knownRevoked(principal: GeoPrincipal): boolean | Promise<boolean> {
    const { tokenId } = principal;
    if (!isRevocable(tokenId)) return false;
    const status = this.revocations.get(tokenId);
    if (status?.revoked) return true;
    const age = status ? Date.now() - status.checkedAt : Infinity;
    if (status && age < this.recheckMs) {
      if (age >= this.recheckMs - this.refreshAheadMs && !status.reading) void this.startRead(tokenId, status);
      return false;
    }
    if (status?.reading) return status.reading;
    const entry: RevocationStatus = status ?? { checkedAt: 0, revoked: false };
    if (!status) this.remember(tokenId, entry);
    return this.startRead(tokenId, entry);
  }

  /** One read for the token's status, shared through `entry.reading` until it answers; never rejects. */
  private startRead(tokenId: string, entry: RevocationStatus): Promise<boolean> {
    const reading = this.state.isRevoked(tokenId).then(
      (revoked) => {
        entry.reading = undefined;
        return this.answered(tokenId, entry, revoked);
      },
      () => {
        // Unreadable now (broker down): keep the last answer and try again after a recheck period.
        entry.reading = undefined;
        entry.checkedAt = Date.now();
        return entry.revoked;
      },
    );
    entry.reading = reading;
    return reading;
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

function revokedError(eventId: string | undefined): GeoProtocolError {
  return new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked', eventId);
}

/** Token ids the state store can hold; others (from a custom authenticator) cannot have been revoked. */
export function isRevocable(tokenId: string | undefined): tokenId is string {
  return tokenId !== undefined && STATE_ID_PATTERN.test(tokenId);
}
