import type { Logger } from '@nestjs/common';
import type { AccessPolicy } from '../auth/access-policy.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { GeoCloseCode } from '../protocol/wire.js';
import type { GeoTransport, GeoSubscription } from '../transport/geo-transport.interface.js';
import type { ConnectionIndex } from './connection-index.js';
import type { LimitLog } from './limit-log.js';

/**
 * A server's side of revocation: revoking a token, following the state store's revocation
 * channel (retried while it cannot start), and closing the connections that hold a revoked
 * token, found through the connection index.
 */
export class Revocations {
  /** The state store's revocation channel, once watched. */
  private watch: GeoSubscription | undefined;
  /** Set while a failed watch waits to be tried again. */
  private retry: NodeJS.Timeout | undefined;

  constructor(
    /** Its state store keeps the revocation list and carries the channel. */
    private readonly transport: GeoTransport,
    private readonly access: AccessPolicy,
    private readonly index: ConnectionIndex,
    private readonly limitLog: LimitLog,
    /** The server's logger: these lines are the server's. */
    private readonly logger: Logger,
  ) {}

  /** Stored in the state store and announced; applied on this instance before it resolves. */
  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    await this.transport.state.revoke(tokenId, expiresAt);
    this.access.markRevoked(tokenId);
  }

  /**
   * Watches the state store's revocation channel. A watch that cannot start is tried again
   * every second (frames still meet the revocation recheck meanwhile); once it runs after
   * such a failure, what it may have missed is read again.
   */
  async start(afterFailure = false): Promise<void> {
    this.retry = undefined;
    try {
      this.watch = await this.transport.state.watchRevocations(
        (tokenId) => this.access.markRevoked(tokenId),
        () => this.recheck(),
      );
      if (afterFailure) this.recheck();
    } catch (error) {
      this.logger.warn(`cannot watch the revocation channel yet, retrying every second: ${(error as Error).message}`);
      this.retry = setTimeout(() => void this.start(true), 1000);
      this.retry.unref();
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch(() => undefined);
  }

  /** A token is revoked: each connection holding it is told and closed (4003). */
  closeRevoked(tokenId: string): void {
    for (const connection of this.index.withToken(tokenId)) {
      if (!connection.isOpen) continue;
      this.limitLog.hit(connection, 'TOKEN_REVOKED');
      connection.sendError(new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token was revoked'));
      connection.close(GeoCloseCode.TOKEN_REVOKED, 'token revoked');
    }
  }

  /**
   * The revocation channel may have missed announcements (it reconnected): the status of
   * every token held by a connection here is read once, a batch at a time. The cost grows
   * with the channel's reconnects and the distinct tokens, never with time.
   */
  private recheck(): void {
    const tokens = this.index.tokenIds();
    if (tokens.length === 0) return;
    this.logger.log(`revocation channel back: reading the status of ${tokens.length} token(s) held here again`);
    void this.access.recheck(tokens);
  }
}
