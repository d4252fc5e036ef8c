import { Logger } from '@nestjs/common';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from 'ws';
import type { AccessPolicy } from '../auth/access-policy.js';
import type { HandshakeAuth } from '../auth/handshake-auth.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import type { GeoPrincipal } from '../auth/geo-principal.js';
import { chooseSubprotocol } from '../protocol/wire.js';
import { tooManyConnections } from './connection-index.js';
import { RefusalLog } from './refusal-log.js';
import type { SessionRead } from '../sessions/session-keeper.js';

/**
 * What the upgrade of a request gets: accepted, with its principal, or refused with an
 * HTTP status and the JSON body `{ code, message }`.
 */
export type HandshakeVerdict =
  { accepted: true; principal: GeoPrincipal } | { accepted: false; status: RefusalStatus; code: RefusalCode; message: string };

type RefusalStatus = 401 | 403 | 429 | 503;
type RefusalCode = 'UNAUTHORIZED' | 'FORBIDDEN' | 'TOO_MANY_CONNECTIONS' | 'UNAVAILABLE';

const STATUS_TEXT = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable' } as const;

/**
 * The HTTP side of a connection (the seam Nest's `WsAdapter` covers): the path, the
 * `Origin` allowlist, authentication, and refusals answered in HTTP before any socket
 * opens. Accepted upgrades are handed to `onConnection`. {@link UpgradeHandler.check} is
 * the one decision, shared with the handshake check endpoint (`GET /geo/handshake`).
 */
export class UpgradeHandler {
  private readonly logger = new Logger(UpgradeHandler.name);
  /** Refusals any page or script can cause (a foreign Origin, too many connections), logged once a minute per code. */
  private readonly refusals: RefusalLog;

  constructor(
    private readonly options: ResolvedGeoWsOptions,
    private readonly httpServer: HttpServer,
    private readonly wss: WebSocketServer,
    private readonly auth: HandshakeAuth,
    private readonly access: AccessPolicy,
    /** Why upgrades get 503 right now (the server starts, drains or is overloaded), or undefined. */
    private readonly unavailable: () => string | undefined,
    /** Open connections of a user on this server (`limits.maxConnectionsPerUser`). */
    private readonly connectionsOf: (principalId: string) => number,
    /**
     * Starts reading the session a connection asks back, once its token is verified: the
     * read runs while the revocation list is read, one wait instead of two.
     */
    private readonly readSession: (sessionId: string | undefined) => SessionRead | undefined,
    private readonly onConnection: (ws: WebSocket, principal: GeoPrincipal, session: SessionRead | undefined) => Promise<void>,
    /** Counts refused upgrades (metrics), by HTTP status and code. */
    private readonly onRefused?: (status: number, code: string) => void,
  ) {
    this.refusals = new RefusalLog(options.region, 'upgrade');
  }

  /** The WebSocket path: the URL an authenticator sees at the upgrade has it. */
  get path(): string {
    return this.options.path;
  }

  /**
   * Whether the upgrade of `request` would be accepted, exactly as the upgrade decides it:
   * the region accepts connections (not starting, draining or overloaded: 503), the `Origin` is
   * allowed (403), the token authenticates and is not revoked (401; 503 when the
   * revocation list cannot be read), the token may be used in this region (403), its user
   * has fewer than `limits.maxConnectionsPerUser` connections here (429). One run of
   * `authenticate` and one revocation read, as one upgrade costs.
   */
  async check(request: IncomingMessage, url: URL, authenticated?: (principal: GeoPrincipal) => void): Promise<HandshakeVerdict> {
    const unavailable = this.unavailable();
    if (unavailable !== undefined) return refusal(503, 'UNAVAILABLE', unavailable);
    // Absent (non-browser clients) is allowed; present, even empty, must be on the list: an
    // empty Origin is no proof of a same-site page (an `Origin: ` sent by a script, a proxy).
    const origin = request.headers.origin;
    if (origin !== undefined && this.options.allowedOrigins && !this.options.allowedOrigins.has(origin)) {
      // Counted and written once a minute: any page (or script) can send a foreign Origin.
      this.refusals.hit('FORBIDDEN (origin not allowed)');
      return refusal(403, 'FORBIDDEN', 'this origin may not open a WebSocket here');
    }
    let principal: GeoPrincipal | null;
    try {
      principal = await this.auth.fromUpgrade(request, url, authenticated);
    } catch (error) {
      // The shared state (e.g. the revocation list) unreadable: this region cannot vouch
      // for the token right now, which is no reason to tell the client its token is bad.
      return error instanceof GeoProtocolError && error.code === GeoErrorCode.UNAVAILABLE
        ? refusal(503, 'UNAVAILABLE', error.message)
        : refusal(401, 'UNAUTHORIZED', 'a valid token is required');
    }
    if (!principal) return refusal(401, 'UNAUTHORIZED', 'a valid token is required');
    if (!this.access.mayConnect(principal))
      return refusal(403, 'FORBIDDEN', `this token may not be used in region "${this.options.region}"`);
    const limit = this.options.limits.maxConnectionsPerUser;
    if (limit > 0 && this.connectionsOf(principal.id) >= limit) {
      this.refusals.hit(GeoErrorCode.TOO_MANY_CONNECTIONS);
      return refusal(429, GeoErrorCode.TOO_MANY_CONNECTIONS, tooManyConnections(limit));
    }
    return { accepted: true, principal };
  }

  /** The HTTP server's `upgrade` listener. */
  readonly handle = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node's HTTP server stops watching an upgraded socket for errors: from here until ws
    // takes it over (or the refusal is written), a client that resets the connection would
    // otherwise raise an unhandled 'error' and take the whole process down.
    socket.on('error', this.onHandshakeError);
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== this.options.path) {
      // Another WebSocket server on the same HTTP server may own this path.
      if (this.httpServer.listenerCount('upgrade') === 1) {
        this.onRefused?.(404, 'NOT_FOUND');
        refuse(socket, 404, 'Not Found');
      }
      return;
    }
    const sessionId = url.searchParams.get('session') ?? undefined;
    let session: SessionRead | undefined;
    void this.check(request, url, () => (session = this.readSession(sessionId)))
      .then((verdict) => {
        if (!verdict.accepted) {
          this.onRefused?.(verdict.status, verdict.code);
          return refuse(socket, verdict.status, STATUS_TEXT[verdict.status], verdict.code, verdict.message);
        }
        const { principal } = verdict;
        this.wss.handleUpgrade(request, socket, head, (ws) => {
          // ws watches the socket for errors from here on: one listener array less per connection.
          socket.off('error', this.onHandshakeError);
          this.onConnection(ws, principal, session).catch((error: unknown) => {
            this.logger.error(`a connection failed to start: ${(error as Error).message}`, (error as Error).stack);
            ws.terminate();
          });
        });
      })
      .catch((error: unknown) => {
        // Nothing on this path may become an unhandled rejection: it would end the process.
        this.logger.error(`an upgrade failed: ${(error as Error).message}`, (error as Error).stack);
        socket.destroy();
      });
  };

  private readonly onHandshakeError = (error: Error): void => {
    this.logger.debug(`a client dropped its connection during the handshake: ${error.message}`);
  };
}

/**
 * The `ws` server accepted upgrades are handed to, without an HTTP server of its own (the
 * `UpgradeHandler` listens on the app's). Frames past twice the limit are refused by ws
 * itself (close 1009); smaller oversize frames get PAYLOAD_TOO_LARGE and the connection stays open.
 */
export function createWebSocketServer(options: ResolvedGeoWsOptions): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    // The server keeps its own map of connections: ws's Set would add an entry and a
    // 'close' listener per connection (and grow the listener array past two).
    clientTracking: false,
    maxPayload: options.limits.maxPayloadBytes * 2 + 1024,
    // Browsers offer ['geo-ws.v1' or 'geo-ws.v1.msgpack', 'bearer.<token>']: answer with ours, never echo the token.
    handleProtocols: chooseSubprotocol,
    perMessageDeflate: perMessageDeflate(options.compression),
  });
}

/**
 * ws's permessage-deflate settings for `compression`. No context takeover either way: each
 * frame is compressed on its own, so no frame's compression depends on (or reveals) an
 * earlier frame's content, and a connection's window carries nothing between frames.
 */
function perMessageDeflate(compression: ResolvedGeoWsOptions['compression']): PerMessageDeflateOptions | false {
  if (!compression) return false;
  return {
    threshold: compression.thresholdBytes,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    zlibDeflateOptions: { level: compression.level },
  };
}

function refusal(status: RefusalStatus, code: RefusalCode, message: string): HandshakeVerdict {
  return { accepted: false, status, code, message };
}

/** How long a refused client has to read the refusal before its socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;

/**
 * Answers an upgrade with an HTTP error and a JSON body `{ code, message }`, before any
 * socket opens. The socket is destroyed soon after: upgrade sockets allow half-open, so a
 * client that never closes its side would otherwise hold a file descriptor for good.
 */
function refuse(socket: Duplex, status: number, text: string, code?: string, message?: string): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  const body = code ? JSON.stringify({ code, message }) : '';
  // 503 (starting, draining, overloaded) passes: a client may come back in a second.
  const retryAfter = status === 503 ? 'Retry-After: 1\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${retryAfter}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
