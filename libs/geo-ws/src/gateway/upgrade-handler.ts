import { Logger } from '@nestjs/common';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { AccessPolicy } from '../auth/access-policy.js';
import type { HandshakeAuth } from '../auth/handshake-auth.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import type { GeoPrincipal } from '../auth/geo-principal.js';

/**
 * The HTTP side of a connection (the seam Nest's `WsAdapter` covers): the path, the
 * `Origin` allowlist, authentication, and refusals answered in HTTP before any socket
 * opens. Accepted upgrades are handed to `onConnection`.
 */
export class UpgradeHandler {
  private readonly logger = new Logger(UpgradeHandler.name);

  constructor(
    private readonly options: ResolvedGeoWsOptions,
    private readonly httpServer: HttpServer,
    private readonly wss: WebSocketServer,
    private readonly auth: HandshakeAuth,
    private readonly access: AccessPolicy,
    /** False while the server starts or drains: upgrades get 503. */
    private readonly accepting: () => boolean,
    private readonly onConnection: (ws: WebSocket, principal: GeoPrincipal, sessionId: string | undefined) => Promise<void>,
  ) {}

  /** The HTTP server's `upgrade` listener. */
  readonly handle = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node's HTTP server stops watching an upgraded socket for errors: from here until ws
    // takes it over (or the refusal is written), a client that resets the connection would
    // otherwise raise an unhandled 'error' and take the whole process down.
    socket.on('error', this.onHandshakeError);
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== this.options.path) {
      // Another WebSocket server on the same HTTP server may own this path.
      if (this.httpServer.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found');
      return;
    }
    if (!this.accepting())
      return refuse(socket, 503, 'Service Unavailable', 'UNAVAILABLE', 'this region is draining or starting; try another');
    const origin = request.headers.origin;
    if (origin && this.options.allowedOrigins && !this.options.allowedOrigins.has(origin)) {
      this.logger.warn(`refused a WebSocket from origin ${origin}`);
      return refuse(socket, 403, 'Forbidden', 'FORBIDDEN', 'this origin may not open a WebSocket here');
    }
    void this.auth
      .fromUpgrade(request, url)
      .then(
        (principal) => {
          if (!principal) return refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', 'a valid token is required');
          if (!this.access.mayConnect(principal)) {
            return refuse(socket, 403, 'Forbidden', 'FORBIDDEN', `this token may not be used in region "${this.options.region}"`);
          }
          this.wss.handleUpgrade(request, socket, head, (ws) => {
            // ws watches the socket for errors from here on: one listener array less per connection.
            socket.off('error', this.onHandshakeError);
            this.onConnection(ws, principal, url.searchParams.get('session') ?? undefined).catch((error: unknown) => {
              this.logger.error(`a connection failed to start: ${(error as Error).message}`, (error as Error).stack);
              ws.terminate();
            });
          });
        },
        (error: unknown) =>
          // The shared state (e.g. the revocation list) unreadable: this region cannot vouch
          // for the token right now, which is no reason to tell the client its token is bad.
          error instanceof GeoProtocolError && error.code === GeoErrorCode.UNAVAILABLE
            ? refuse(socket, 503, 'Service Unavailable', 'UNAVAILABLE', error.message)
            : refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', 'a valid token is required'),
      )
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
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
