import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { GEO_SUBPROTOCOL, GeoCloseCode, GeoFrame } from '../constants.js';
import { AccessPolicy } from '../auth/access-policy.js';
import { GeoHandlerExplorer, type GeoHandler } from '../discovery/geo-handler.explorer.js';
import { parseInboundEvent } from '../envelope/envelope.rules.js';
import type { GeoEnvelopeDraft } from '../envelope/geo-envelope.interface.js';
import { GeoConfigError } from '../errors/geo-config.error.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { toProtocolError } from '../errors/to-protocol-error.js';
import { ReplayBudget } from '../fanout/replay-budget.js';
import { RoomFeeds } from '../fanout/room-feeds.js';
import type { JoinOutcome, JoinPosition } from '../fanout/room-feed.js';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.module-definition.js';
import { RoomPresence } from '../presence/room-presence.js';
import { SessionKeeper } from '../sessions/session-keeper.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import { parseFrame, parseJoin, parseLeave, type Frame } from '../protocol/frames.js';
import { GeoTransport } from '../transport/geo-transport.interface.js';
import { globalLog, regionalLog, type LogRef } from '../transport/log-ref.js';
import { ClientConnection } from './client-connection.js';
import type { GeoHandshake, GeoPrincipal } from './geo-principal.js';

/**
 * The WebSocket side of one region's app: accepts upgrades on the module's path,
 * authenticates them, speaks wire protocol v1, runs `@GeoSubscribe` handlers and
 * appends their envelopes to the room log, and fans the log out to local members.
 */
@Injectable()
export class GeoWsServer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('GeoWs');
  private readonly connections = new Set<ClientConnection>();
  private readonly feeds: RoomFeeds;
  private handlers = new Map<string, GeoHandler>();
  private hasRegionalHandlers = false;
  private wss: WebSocketServer | undefined;
  private httpServer: HttpServer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private bufferSweep: NodeJS.Timeout | undefined;
  private started = false;
  private draining = false;
  /** When each (connection, limit) was last logged. */
  private readonly limitLogged = new Map<string, number>();
  /** Cross-region presence, when `presence` is on. */
  readonly presence: RoomPresence | undefined;
  private readonly sessions: SessionKeeper | undefined;
  private readonly access: AccessPolicy;

  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    @Inject(GeoTransport) private readonly transport: GeoTransport,
    private readonly explorer: GeoHandlerExplorer,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    const { replay } = options.limits;
    this.feeds = new RoomFeeds(
      transport,
      new ReplayBudget({ batchSize: options.log.replayBatchSize, perInstance: replay.perInstance, concurrent: replay.concurrent, highWaterBytes: replay.highWaterBytes }),
    );
    this.access = new AccessPolicy(options.region, transport.state);
    this.presence = options.presenceTtlMs ? new RoomPresence(transport.state, options.presenceTtlMs) : undefined;
    this.sessions = options.sessions ? new SessionKeeper(transport.state, options.sessions.ttlMs, options.sessions.saveEveryMs) : undefined;
  }

  /** Accepting clients and the transport is connected. Drives `/readyz`. */
  isReady(): boolean {
    return this.started && !this.draining && this.transport.isReady();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Connected clients on this instance. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Open live tails on this instance (one per log with local members, whatever the client count). */
  get feedCount(): number {
    return this.feeds.count;
  }

  async onApplicationBootstrap(): Promise<void> {
    this.handlers = this.explorer.explore();
    this.hasRegionalHandlers = [...this.handlers.values()].some(
      (handler) => handler.subscription.scope === 'regional',
    );
    for (const handler of this.handlers.values()) {
      const unknown = handler.subscription.regions?.filter((region) => !this.options.regions.has(region)) ?? [];
      if (unknown.length > 0) {
        throw new GeoConfigError(`${handler.name}: @GeoSubscribe regions ${unknown.join(', ')} are not in the region directory (${[...this.options.regions.keys()].join(', ')}).`);
      }
    }
    if (this.handlers.size === 0) {
      this.logger.warn('No @GeoSubscribe handlers found: clients can join rooms but not publish.');
    }
    try {
      await this.transport.connect();
    } catch (error) {
      throw new Error(`GeoWsModule: the ${this.transport.name} transport could not connect: ${(error as Error).message}`, { cause: error });
    }
    const server = this.adapterHost.httpAdapter?.getHttpServer() as HttpServer | undefined;
    if (!server) throw new Error('GeoWsModule needs an HTTP server: create the app with NestFactory.create() (platform-express or fastify).');
    this.httpServer = server;
    // Frames past twice the limit are refused by ws itself (close 1009); smaller oversize
    // frames get PAYLOAD_TOO_LARGE and the connection stays open.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.limits.maxPayloadBytes * 2 + 1024,
      // Browsers offer ['geo-ws.v1', 'bearer.<token>']: answer with ours, never echo the token.
      handleProtocols: (protocols) => (protocols.has(GEO_SUBPROTOCOL) ? GEO_SUBPROTOCOL : false),
    });
    server.on('upgrade', this.onUpgrade);
    this.heartbeat = setInterval(() => this.checkHeartbeats(), this.options.heartbeatMs);
    this.heartbeat.unref();
    this.bufferSweep = setInterval(() => this.sweepBuffers(), BUFFER_SWEEP_MS);
    this.bufferSweep.unref();
    this.started = true;
    this.logger.log(`Region "${this.options.region}" serving WebSocket on ${this.options.path} over the ${this.transport.name} transport`);
  }

  /**
   * Drain: readiness goes false, every client is told where to go (`geo.reconnect`),
   * and after the grace period the rest are closed with 1012 (service restart).
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.started || this.draining) return;
    this.draining = true;
    const target = this.suggestRegion();
    for (const connection of this.connections) connection.send(GeoFrame.RECONNECT, target);
    const deadline = Date.now() + this.options.drainGraceMs;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const connection of this.connections) connection.close(GeoCloseCode.SERVICE_RESTART, 'server draining; reconnect');
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.bufferSweep);
    this.presence?.stop();
    this.sessions?.stop();
    this.httpServer?.off('upgrade', this.onUpgrade);
    for (const connection of this.connections) connection.terminate();
    this.connections.clear();
    await this.feeds.closeAll();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    await this.transport.close();
    this.started = false;
  }

  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node's HTTP server stops watching an upgraded socket for errors: from here until ws
    // takes it over (or the refusal is written), a client that resets the connection would
    // otherwise raise an unhandled 'error' and take the whole process down.
    socket.on('error', this.onHandshakeError);
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== this.options.path) {
      // Another WebSocket server on the same HTTP server may own this path.
      if (this.httpServer && this.httpServer.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found');
      return;
    }
    if (this.draining || !this.started) return refuse(socket, 503, 'Service Unavailable', 'UNAVAILABLE', 'this region is draining or starting; try another');
    const origin = request.headers.origin;
    if (origin && this.options.allowedOrigins && !this.options.allowedOrigins.has(origin)) {
      this.logger.warn(`refused a WebSocket from origin ${origin}`);
      return refuse(socket, 403, 'Forbidden', 'FORBIDDEN', 'this origin may not open a WebSocket here');
    }
    void this.authenticate(request, url).then(
      (principal) => {
        if (!principal) return refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', 'a valid token is required');
        if (!this.access.mayConnect(principal)) {
          return refuse(socket, 403, 'Forbidden', 'FORBIDDEN', `this token may not be used in region "${this.options.region}"`);
        }
        this.wss!.handleUpgrade(request, socket, head, (ws) =>
          this.onConnection(ws, principal, url.searchParams.get('session') ?? undefined).catch((error: unknown) => {
            this.logger.error(`a connection failed to start: ${(error as Error).message}`, (error as Error).stack);
            ws.terminate();
          }),
        );
      },
      (error: unknown) =>
        // The shared state (e.g. the revocation list) unreadable: this region cannot vouch
        // for the token right now, which is no reason to tell the client its token is bad.
        error instanceof GeoProtocolError && error.code === GeoErrorCode.UNAVAILABLE
          ? refuse(socket, 503, 'Service Unavailable', 'UNAVAILABLE', error.message)
          : refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', 'a valid token is required'),
    ).catch((error: unknown) => {
      // Nothing on this path may become an unhandled rejection: it would end the process.
      this.logger.error(`an upgrade failed: ${(error as Error).message}`, (error as Error).stack);
      socket.destroy();
    });
  };

  private readonly onHandshakeError = (error: Error): void => {
    this.logger.debug(`a client dropped its connection during the handshake: ${error.message}`);
  };

  private async authenticate(request: IncomingMessage, url: URL): Promise<GeoPrincipal | null> {
    const header = request.headers.authorization;
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
    const fromProtocol = protocols.find((protocol) => protocol.startsWith('bearer.'))?.slice('bearer.'.length);
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : (fromProtocol ?? url.searchParams.get('access_token') ?? undefined);
    return this.verify({ request, url, token });
  }

  private async verify(handshake: GeoHandshake): Promise<GeoPrincipal | null> {
    const principal = await this.options.authenticate(handshake);
    if (principal && (typeof principal.id !== 'string' || principal.id.length === 0)) {
      throw new Error('authenticate() returned a principal without an id');
    }
    // A revoked token opens no connection and refreshes none: one read of the shared list
    // (handshake: HTTP 401; geo.auth: UNAUTHORIZED "the token was revoked").
    if (principal) await this.access.assertNotRevoked(principal);
    return principal;
  }

  private async onConnection(ws: WebSocket, principal: GeoPrincipal, sessionId: string | undefined): Promise<void> {
    const { rate, refusals, replay, maxBufferedBytes } = this.options.limits;
    const connection = new ClientConnection(
      ws,
      principal,
      this.options.region,
      { rate, refusals, replay: replay.perConnection, maxBufferedBytes },
      { evicted: (client, log) => this.onEvicted(client, log), slowConsumer: (client) => this.logLimit(client, 'SLOW_CONSUMER') },
    );
    this.connections.add(connection);
    ws.on('pong', () => (connection.alive = true));
    ws.on('error', (error) => this.logger.debug(`connection ${connection.id}: ${error.message}`));
    ws.on('close', () => this.onClose(connection));
    // Frames that arrive while the session loads wait in the connection's queue.
    let loaded!: () => void;
    connection.queue = new Promise<void>((resolve) => (loaded = resolve));
    ws.on('message', (raw, isBinary) => this.onMessage(connection, raw, isBinary));
    connection.expireAt(principal.expiresAt, () => this.expire(connection));
    const started = await this.sessions?.start(sessionId, principal.id);
    connection.session = started?.session;
    // Gone while its session loaded: onClose found no session to end, so end it here.
    if (connection.closed && started) void this.sessions?.end(started.session);
    connection.send(GeoFrame.WELCOME, {
      connection_id: connection.id,
      region: this.options.region,
      sender: principal.id,
      ...(principal.expiresAt !== undefined ? { expires_at: new Date(principal.expiresAt).toISOString() } : {}),
      ...(started ? { session_id: started.session.id } : {}),
      ...(started?.restored ? { restored: started.restored } : {}),
    });
    loaded();
  }

  private onMessage(connection: ClientConnection, raw: RawData, isBinary: boolean): void {
    connection.lastFrameAt = Date.now();
    const bytes = rawToBuffer(raw);
    let frame: Frame;
    try {
      // Taken before parsing: malformed frames cost the sender as much as valid ones.
      const withinRate = connection.bucket.take();
      if (bytes.length > this.options.limits.maxPayloadBytes) {
        throw new GeoProtocolError(
          GeoErrorCode.PAYLOAD_TOO_LARGE,
          `frame is ${bytes.length} bytes; the limit is ${this.options.limits.maxPayloadBytes}`,
        );
      }
      if (isBinary && !isUtf8(bytes)) throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'binary frames must hold UTF-8 JSON');
      frame = parseFrame(bytes.toString('utf8'), this.options.limits.maxDepth);
      if (!withinRate) {
        throw new GeoProtocolError(GeoErrorCode.RATE_LIMITED, 'too many frames; slow down and resend with the same event_id', eventIdOf(frame));
      }
    } catch (error) {
      this.refuse(connection, toProtocolError(error).error);
      return;
    }
    connection.queue = connection.queue.then(() => this.handleFrame(connection, frame));
  }

  private async handleFrame(connection: ClientConnection, frame: Frame): Promise<void> {
    if (connection.closed) return;
    try {
      switch (frame.event) {
        case GeoFrame.JOIN:
          return await this.join(connection, frame.data);
        case GeoFrame.LEAVE:
          return this.leave(connection, frame.data);
        case GeoFrame.PING:
          return connection.send(GeoFrame.PONG, frame.data ?? null);
        case GeoFrame.AUTH:
          return await this.refresh(connection, frame.data);
        default:
          return await this.publish(connection, frame);
      }
    } catch (error) {
      const { error: protocolError, unexpected } = toProtocolError(error, eventIdOf(frame));
      if (unexpected) this.logger.error(`${frame.event} from ${connection.principal.id} failed`, (error as Error)?.stack);
      this.refuse(connection, protocolError, roomOf(frame));
    }
  }

  /**
   * Answers a frame with `geo.error`. Refusals the client brought on itself take a token
   * from its refusal budget; once that is empty the connection is closed (1008) rather
   * than answered for ever, so garbage cannot turn into a stream of error frames.
   */
  private refuse(connection: ClientConnection, error: GeoProtocolError, room?: string): void {
    if (CLIENT_FAULTS.has(error.code)) {
      if (error.code === GeoErrorCode.RATE_LIMITED || error.code === GeoErrorCode.PAYLOAD_TOO_LARGE) this.logLimit(connection, error.code);
      if (!connection.refusals.take()) {
        this.logLimit(connection, 'TOO_MANY_REFUSALS');
        connection.close(GeoCloseCode.POLICY_VIOLATION, 'too many refused frames');
        return;
      }
    }
    connection.sendError(error, room);
  }

  private async join(connection: ClientConnection, data: unknown): Promise<void> {
    const request = parseJoin(data);
    this.access.assertMayUse(connection.principal, request.room);
    if (connection.rooms.has(request.room)) this.leaveLogs(connection, request.room);
    else if (connection.rooms.size >= this.options.limits.maxRoomsPerConnection) {
      this.logLimit(connection, GeoErrorCode.TOO_MANY_ROOMS);
      throw new GeoProtocolError(
        GeoErrorCode.TOO_MANY_ROOMS,
        `a connection may join at most ${this.options.limits.maxRoomsPerConnection} rooms; leave one first`,
      );
    }
    connection.rooms.add(request.room);
    try {
      await this.joinLog(connection, globalLog(request.room), request, undefined);
      if (this.hasRegionalHandlers) {
        await this.joinLog(connection, regionalLog(request.room, this.options.region), request.regional ?? {}, 'regional');
      }
    } catch (error) {
      this.leaveLogs(connection, request.room);
      connection.rooms.delete(request.room);
      throw error;
    }
    // Closed while joining: onClose already ran, so undo what this join added.
    if (connection.closed) this.leaveLogs(connection, request.room);
    else this.presence?.joined(request.room, { id: connection.id, sender: connection.principal.id, region: this.options.region });
  }

  /** Resolves once `geo.joined` is sent; the replay and live events continue on their own. */
  private joinLog(connection: ClientConnection, log: LogRef, position: JoinPosition, scope: 'regional' | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let announced = false;
      const announce = (outcome: JoinOutcome): void => {
        announced = true;
        connection.send(GeoFrame.JOINED, { room: log.room, ...(scope ? { scope } : {}), ...outcome });
        // The session starts where the client is before the replay: deliveries move it on.
        const before = !outcome.recovered ? 0 : (position.since ?? outcome.seq);
        if (!scope) connection.session?.joined(log.room, Math.min(before, outcome.seq), outcome.epoch);
        resolve();
      };
      this.feeds.join(log, connection, position, announce).catch((error: unknown) => {
        if (!announced) return reject(error);
        // Failed after geo.joined was sent (the replay broke): the client must rejoin.
        if (connection.rooms.delete(log.room)) {
          this.leaveLogs(connection, log.room);
          connection.sendError(toProtocolError(error).error, log.room);
        }
      });
    });
  }

  private leave(connection: ClientConnection, data: unknown): void {
    const { room } = parseLeave(data);
    if (!connection.rooms.has(room)) throw new GeoProtocolError(GeoErrorCode.NOT_JOINED, `not in room "${room}"`);
    connection.rooms.delete(room);
    this.leaveLogs(connection, room);
    connection.session?.left(room);
    connection.send(GeoFrame.LEFT, { room });
  }

  private leaveLogs(connection: ClientConnection, room: string): void {
    this.presence?.left(room, connection.id);
    this.feeds.leave(globalLog(room), connection);
    if (this.hasRegionalHandlers) this.feeds.leave(regionalLog(room, this.options.region), connection);
  }

  private async publish(connection: ClientConnection, frame: Frame): Promise<void> {
    const handler = this.handlers.get(frame.event);
    if (!handler) {
      throw new GeoProtocolError(GeoErrorCode.UNKNOWN_EVENT, `no handler for event "${frame.event}"`, eventIdOf(frame));
    }
    const inbound = parseInboundEvent(frame.data);
    if (!connection.rooms.has(inbound.room_id)) {
      throw new GeoProtocolError(GeoErrorCode.NOT_JOINED, `join room "${inbound.room_id}" before publishing to it`, inbound.event_id);
    }
    this.access.assertMayUse(connection.principal, inbound.room_id, inbound.event_id);
    this.access.assertEventAllowedHere(frame.event, handler.subscription.regions, inbound.event_id);
    if (handler.subscription.critical) await this.access.revalidate(connection.principal, inbound.event_id);
    const envelope = await handler.invoke(connection, frame.data as object);
    if (!isSealedFor(envelope, inbound.event_id, inbound.room_id)) {
      throw new GeoProtocolError(GeoErrorCode.REJECTED, 'the handler pipeline did not produce an envelope; nothing was appended', inbound.event_id);
    }
    const { scope, ephemeral } = handler.subscription;
    const log = scope === 'regional' ? regionalLog(envelope.room_id, this.options.region) : globalLog(envelope.room_id);
    if (ephemeral) {
      await this.transport.publishEphemeral(log, envelope);
      connection.send(GeoFrame.ACK, { event_id: envelope.event_id, seq: null });
      return;
    }
    // Started in frame order, awaited off the queue: one client's appends keep their
    // order without waiting a round trip to the log for each.
    void this.transport.append(log, envelope).then(
      (result) =>
        connection.send(GeoFrame.ACK, {
          event_id: envelope.event_id,
          seq: result.seq,
          ...(result.duplicate ? { duplicate: true } : {}),
        }),
      (error: unknown) => {
        const { error: protocolError, unexpected } = toProtocolError(error, envelope.event_id);
        if (unexpected) this.logger.error(`append of ${envelope.event_id} failed`, (error as Error)?.stack);
        connection.sendError(protocolError, envelope.room_id);
      },
    );
  }

  /** `geo.auth { token }`: a fresh token for the same identity, in-band. */
  private async refresh(connection: ClientConnection, data: unknown): Promise<void> {
    const token = (data as { token?: unknown } | null)?.token;
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw new GeoProtocolError(GeoErrorCode.INVALID_ENVELOPE, 'geo.auth: data must be { token }');
    }
    const principal = await this.verify({ url: new URL(`http://localhost${this.options.path}`), token }).catch((error: unknown) => {
      // Revoked (UNAUTHORIZED) or the revocation list unreadable (UNAVAILABLE): said as such.
      if (error instanceof GeoProtocolError) throw new GeoProtocolError(error.code, `geo.auth: ${error.message}`);
      return null;
    });
    if (!principal) throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'geo.auth: the token is not valid');
    if (principal.id !== connection.principal.id) throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'geo.auth: the token is for another identity');
    connection.principal = principal;
    connection.expireAt(principal.expiresAt, () => this.expire(connection));
    connection.send(GeoFrame.AUTHED, { expires_at: principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString() });
  }

  /**
   * One warning per connection and limit per minute: enough to see abuse in the logs
   * without letting a flood of refused frames flood them too. Never logs tokens.
   */
  private logLimit(connection: ClientConnection, limit: string): void {
    const key = `${connection.id}:${limit}`;
    const now = Date.now();
    if ((this.limitLogged.get(key) ?? 0) > now - 60_000) return;
    this.limitLogged.set(key, now);
    if (this.limitLogged.size > 10_000) this.limitLogged.clear();
    this.logger.warn(`limit ${limit}: connection ${connection.id} (sender ${connection.principal.id}) in region ${this.options.region}`);
  }

  private expire(connection: ClientConnection): void {
    this.logLimit(connection, 'TOKEN_EXPIRED');
    connection.sendError(new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token expired; reconnect with a new one'));
    connection.close(GeoCloseCode.TOKEN_EXPIRED, 'token expired');
  }

  /** Revokes a token everywhere until it would have expired (e.g. on logout or compromise). */
  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    await this.transport.state.revoke(tokenId, expiresAt);
  }

  private onEvicted(connection: ClientConnection, log: LogRef): void {
    if (!connection.rooms.delete(log.room)) return;
    this.leaveLogs(connection, log.room);
    connection.sendError(
      new GeoProtocolError(GeoErrorCode.UNAVAILABLE, `room "${log.room}" log was reset; join it again`),
      log.room,
    );
  }

  private onClose(connection: ClientConnection): void {
    connection.closed = true;
    this.connections.delete(connection);
    if (connection.session) void this.sessions?.end(connection.session);
    for (const room of connection.rooms) this.leaveLogs(connection, room);
    connection.rooms.clear();
  }

  /**
   * Bounds the memory held for clients that do not read: one over its own limit, or the
   * biggest ones while all of them together are over the instance's limit, are closed as
   * slow consumers (live sends check the per-connection limit too, at once).
   */
  private sweepBuffers(): void {
    const { maxBufferedBytes, maxBufferedBytesTotal } = this.options.limits;
    let total = 0;
    const holding: ClientConnection[] = [];
    for (const connection of this.connections) {
      const backlog = connection.backlogBytes;
      if (backlog === 0 || !connection.isOpen) continue;
      if (backlog > maxBufferedBytes) {
        connection.closeSlowConsumer();
        continue;
      }
      total += backlog;
      holding.push(connection);
    }
    if (total <= maxBufferedBytesTotal) return;
    holding.sort((a, b) => b.backlogBytes - a.backlogBytes);
    for (const connection of holding) {
      if (total <= maxBufferedBytesTotal) break;
      total -= connection.backlogBytes;
      connection.closeSlowConsumer();
    }
  }

  private checkHeartbeats(): void {
    const { idleTimeoutMs } = this.options.limits;
    for (const connection of this.connections) {
      if (idleTimeoutMs > 0 && Date.now() - connection.lastFrameAt > idleTimeoutMs) {
        this.logLimit(connection, 'IDLE_TIMEOUT');
        connection.close(GeoCloseCode.IDLE_TIMEOUT, 'idle');
        continue;
      }
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
      connection.ping();
    }
  }

  /** The next region in directory order: where this region's clients should go while it drains. */
  private suggestRegion(): { region: string; url: string } {
    const names = [...this.options.regions.keys()];
    const next = names[(names.indexOf(this.options.region) + 1) % names.length];
    return { region: next, url: this.options.regions.get(next)!.wsUrl };
  }
}

/** How often the memory held for slow readers is checked. */
const BUFFER_SWEEP_MS = 1000;

/**
 * Refusals caused by what the client sent (they count against `limits.refusals`); not
 * the server's own troubles, nor NOT_JOINED, which a resuming client meets in passing.
 */
const CLIENT_FAULTS: ReadonlySet<string> = new Set<string>(
  Object.values(GeoErrorCode).filter((code) => code !== GeoErrorCode.UNAVAILABLE && code !== GeoErrorCode.INTERNAL && code !== GeoErrorCode.NOT_JOINED),
);

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

function rawToBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function eventIdOf(frame: Frame): string | undefined {
  const id = (frame.data as { event_id?: unknown } | null)?.event_id;
  return typeof id === 'string' && id.length <= 64 ? id : undefined;
}

function roomOf(frame: Frame): string | undefined {
  const data = frame.data as { room_id?: unknown; room?: unknown } | null;
  const room = data?.room_id ?? data?.room;
  return typeof room === 'string' && room.length <= 128 ? room : undefined;
}

function isSealedFor(value: unknown, eventId: string, roomId: string): value is GeoEnvelopeDraft {
  const envelope = value as GeoEnvelopeDraft | undefined;
  return !!envelope && envelope.event_id === eventId && envelope.room_id === roomId && typeof envelope.sender === 'string';
}
