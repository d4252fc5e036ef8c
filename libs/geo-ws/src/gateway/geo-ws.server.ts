import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server as HttpServer } from 'node:http';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { codecOf, GeoCloseCode, GeoFeature, GeoFrame } from '../protocol/wire.js';
import type { WelcomeFrame } from '../protocol/frames.js';
import { AccessPolicy, REVOCATION_RECHECK_MS } from '../auth/access-policy.js';
import { HandshakeAuth } from '../auth/handshake-auth.js';
import { GeoHandlerExplorer } from '../discovery/geo-handler.explorer.js';
import { GeoConfigError } from '../errors/geo-config.error.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { ReplayBudget } from '../fanout/replay-budget.js';
import { RoomFeeds } from '../fanout/room-feeds.js';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.tokens.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import { RoomPresence } from '../presence/room-presence.js';
import { SessionKeeper, type SessionRead } from '../sessions/session-keeper.js';
import { GeoTransport } from '../transport/geo-transport.interface.js';
import { globalLog } from '../transport/log-ref.js';
import { ClientConnection, deliveredFrameBytes, type ConnectionHooks, type ConnectionLimits } from './client-connection.js';
import { ConnectionIndex, tooManyConnections } from './connection-index.js';
import { FrameDispatcher } from './frame-dispatcher.js';
import type { GeoPrincipal } from '../auth/geo-principal.js';
import { LimitLog } from './limit-log.js';
import { RefusalLog } from './refusal-log.js';
import { GeoMetrics } from '../metrics/geo-metrics.js';
import { instrumentStateStore } from '../metrics/instrumented-state-store.js';
import { createWebSocketServer, UpgradeHandler } from './upgrade-handler.js';
import { ConnectionUpkeep } from './connection-upkeep.js';
import { Revocations } from './revocations.js';
import { LoopDelayGate } from '../limits/loop-delay-gate.js';
import { HomeFollower } from '../homes/home-follower.js';

/** Every protocol addition this server speaks, for `geo.welcome`. */
const WELCOME_FEATURES: string[] = Object.values(GeoFeature);

/**
 * The WebSocket side of one region's app. Inject it to revoke a token (`revoke`) or to read
 * the region's state (`isReady()`, `isDraining`, `connectionCount`).
 *
 * Upgrades are authenticated by the `UpgradeHandler`, frames run through the
 * `FrameDispatcher`, room logs reach local members through `RoomFeeds`, heartbeats and the
 * bound on memory held for slow readers are the `ConnectionUpkeep`'s, revocations the
 * `Revocations`'; this class owns the lifecycle around them: start-up, connections, and
 * the drain. Members tagged internal are read by the module's own controllers and by this
 * repository's tests; the published declarations leave them out (`stripInternal`).
 */
@Injectable()
export class GeoWsServer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(GeoWsServer.name);
  /** Open connections by socket: the shared socket listeners find theirs here. */
  private readonly connections = new Map<WebSocket, ClientConnection>();
  /** The same connections by user. */
  private readonly index = new ConnectionIndex();
  private readonly feeds: RoomFeeds;
  private readonly access: AccessPolicy;
  private readonly auth: HandshakeAuth;
  private readonly limitLog: LimitLog;
  private readonly dispatcher: FrameDispatcher;
  private readonly upkeep: ConnectionUpkeep;
  /** Sheds new connections while this instance's event loop lags (`limits.maxEventLoopDelayMs`). */
  private readonly arrivals: LoopDelayGate;
  private readonly revocations: Revocations;
  /** What every connection enforces itself, the same for all. */
  private readonly connectionLimits: ConnectionLimits;
  /** What connections tell the server, one object for all (each call names its connection). */
  private readonly connectionHooks: ConnectionHooks;
  /**
   * The listeners of every socket, shared: `this` is the socket, whose connection is looked
   * up, instead of four closures (and their context) per connection.
   */
  private readonly socketListeners: {
    pong: (this: WebSocket) => void;
    error: (this: WebSocket, error: Error) => void;
    close: (this: WebSocket) => void;
    message: (this: WebSocket, raw: RawData, isBinary: boolean) => void;
  };
  private readonly sessions: SessionKeeper | undefined;
  /** @internal Cross-region presence, when `presence` is on: read by `GET /geo/presence/:room`. */
  readonly presence: RoomPresence | undefined;
  private wss: WebSocketServer | undefined;
  private httpServer: HttpServer | undefined;
  private upgrades: UpgradeHandler | undefined;
  private started = false;
  private draining = false;
  /** Moves rooms that follow their traffic here (`placement` answering `'auto'`). */
  private readonly follower: HomeFollower | undefined;

  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    @Inject(GeoTransport) private readonly transport: GeoTransport,
    private readonly explorer: GeoHandlerExplorer,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(GeoMetrics) private readonly metrics: GeoMetrics | null,
  ) {
    const { rate, refusals, replay, maxBufferedBytes } = options.limits;
    // Metrics hook in only when on: with them off, nothing below costs a call.
    const state = metrics ? instrumentStateStore(transport.state, metrics) : transport.state;
    this.follower =
      options.homeMoves &&
      new HomeFollower(transport, options.region, options.homeMoves, metrics ? (from) => metrics.roomMoved(from) : undefined);
    this.feeds = new RoomFeeds(
      transport,
      new ReplayBudget({
        batchSize: options.log.replayBatchSize,
        perInstance: replay.perInstance,
        concurrent: replay.concurrent,
        highWaterBytes: replay.highWaterBytes,
        recentEvents: replay.recentEvents,
        recentMs: replay.recentMs,
      }),
      metrics
        ? {
            // One frame per event per codec for all its members; the lag is observed once per event.
            delivered: (event, members, msgpackMembers, live, ephemeral) => {
              const json = members - msgpackMembers;
              if (json > 0) metrics.delivered(event, json, deliveredFrameBytes(event, ephemeral, 'json'), 'json', live);
              if (msgpackMembers > 0) {
                const bytes = deliveredFrameBytes(event, ephemeral, 'msgpack');
                metrics.delivered(event, msgpackMembers, bytes, 'msgpack', live && json === 0);
              }
            },
            replayed: (events) => metrics.replayedEvents(events),
            tailStopped: () => metrics.tailStopped(),
          }
        : undefined,
      this.follower && ((log, event) => this.follower!.observe(log, event)),
    );
    this.access = new AccessPolicy(options.region, state, REVOCATION_RECHECK_MS, (tokenId) => this.revocations.closeRevoked(tokenId));
    this.auth = new HandshakeAuth(options.authenticate, this.access);
    this.limitLog = new LimitLog(options.region);
    this.revocations = new Revocations(transport, this.access, this.index, this.limitLog, this.logger);
    this.upkeep = new ConnectionUpkeep(options, this.connections, this.limitLog);
    this.arrivals = new LoopDelayGate(options.limits.maxEventLoopDelayMs);
    this.presence = options.presenceTtlMs ? new RoomPresence(state, options.presenceTtlMs) : undefined;
    // Positions are read from the feeds when a session is saved, never written on delivery.
    this.sessions = options.sessions
      ? new SessionKeeper(state, options.sessions, (member, room) => this.feeds.positionOf(globalLog(room), member))
      : undefined;
    this.connectionLimits = { rate, refusals, replay: replay.perConnection, maxBufferedBytes, compression: options.compression };
    this.dispatcher = new FrameDispatcher(
      options,
      transport,
      this.feeds,
      this.access,
      this.auth,
      this.index,
      this.limitLog,
      this.presence,
      metrics,
    );
    const { connections, dispatcher, logger } = this;
    const refusalLog = new RefusalLog(options.region);
    this.connectionHooks = {
      evicted: (client, log) => dispatcher.evicted(client, log),
      slowConsumer: (client) => {
        metrics?.slowConsumerClosed();
        this.limitLog.hit(client, 'SLOW_CONSUMER');
      },
      expired: (client) => dispatcher.expire(client),
      refused: (_client, code) => {
        metrics?.refused(code);
        refusalLog.hit(code);
      },
      ...(metrics ? { sent: (client, event, frame) => metrics.frameSent(event, client.codec, Buffer.byteLength(frame)) } : {}),
    };
    const closed = (ws: WebSocket, connection: ClientConnection): void => this.onClose(ws, connection);
    this.socketListeners = {
      pong() {
        const connection = connections.get(this);
        if (connection) connection.alive = true;
      },
      error(error) {
        logger.debug(`connection ${connections.get(this)?.id ?? '(closed)'}: ${error.message}`);
      },
      close() {
        const connection = connections.get(this);
        if (connection) closed(this, connection);
      },
      message(raw, isBinary) {
        // Not found once onClose ran (shutdown closes before it terminates): the frame would be dropped anyway.
        const connection = connections.get(this);
        if (connection) dispatcher.onMessage(connection, raw, isBinary);
      },
    };
  }

  /** Accepting clients and the transport is connected. Drives `/readyz`. */
  isReady(): boolean {
    return this.isAccepting() && this.transport.isReady();
  }

  /** True once the drain has begun (shutdown): `/readyz` answers 503 and new upgrades are refused. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** @internal The upgrade's decision, for the handshake check (`GET /geo/handshake`); `undefined` until the region started. */
  get upgradeHandler(): UpgradeHandler | undefined {
    return this.upgrades;
  }

  /** Connected clients on this instance (as `/readyz` and the connections gauge report them). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** @internal Open live tails on this instance (one per log with local members, whatever the client count): for tests. */
  get feedCount(): number {
    return this.feeds.count;
  }

  async onApplicationBootstrap(): Promise<void> {
    const handlers = this.explorer.explore();
    for (const handler of handlers.values()) {
      const unknown = handler.subscription.regions?.filter((region) => !this.options.regions.has(region)) ?? [];
      if (unknown.length > 0) {
        throw new GeoConfigError(
          `${handler.name}: @GeoSubscribe regions ${unknown.join(', ')} are not in the region directory (${[...this.options.regions.keys()].join(', ')}).`,
        );
      }
    }
    if (handlers.size === 0) {
      this.logger.warn('No @GeoSubscribe handlers found: clients can join rooms but not publish.');
    }
    // No HTTP adapter in an application context (NestFactory.createApplicationContext).
    const adapter = this.adapterHost.httpAdapter as typeof this.adapterHost.httpAdapter | undefined;
    const server = adapter?.getHttpServer() as HttpServer | undefined;
    if (!server)
      throw new GeoConfigError('GeoWsModule needs an HTTP server: create the app with NestFactory.create() (platform-express or fastify).');
    this.httpServer = server;
    this.dispatcher.useHandlers(handlers);
    this.metrics?.useEvents(handlers.keys());
    this.metrics?.watch(this.gaugeSource, this.transport.name);
    this.wss = createWebSocketServer(this.options);
    // Before the first upgrade: a revocation announced from now on closes its connections here.
    await this.revocations.start();
    this.upgrades = new UpgradeHandler(
      this.options,
      server,
      this.wss,
      this.auth,
      this.access,
      () => this.unavailableReason(),
      (principalId) => this.index.countOf(principalId),
      (sessionId) => this.sessions?.read(sessionId),
      (ws, principal, session) => this.onConnection(ws, principal, session),
      this.metrics ? (status, code) => this.metrics?.upgradeRefused(status, code) : undefined,
    );
    server.on('upgrade', this.upgrades.handle);
    this.upkeep.start();
    this.arrivals.start();
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
    for (const connection of this.connections.values()) connection.send(GeoFrame.RECONNECT, target);
    const deadline = Date.now() + this.options.drainGraceMs;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const connection of this.connections.values()) connection.close(GeoCloseCode.SERVICE_RESTART, 'server draining; reconnect');
  }

  async onApplicationShutdown(): Promise<void> {
    this.metrics?.unwatch(this.gaugeSource);
    await this.revocations.stop();
    this.upkeep.stop();
    this.arrivals.stop();
    this.presence?.stop();
    this.follower?.close();
    if (this.upgrades) this.httpServer?.off('upgrade', this.upgrades.handle);
    // Connections still open close here: their sessions are saved like any close, and
    // written before the transport (closed after this hook) goes away.
    for (const [ws, connection] of [...this.connections]) {
      this.onClose(ws, connection);
      connection.terminate();
    }
    await this.sessions?.close();
    await this.feeds.closeAll();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    this.started = false;
  }

  private isAccepting(): boolean {
    return this.started && !this.draining;
  }

  /** Why new connections are refused with 503 now, or undefined. */
  private unavailableReason(): string | undefined {
    if (!this.isAccepting()) return 'this region is draining or starting; try another';
    return this.arrivals.refusal();
  }

  private async onConnection(ws: WebSocket, principal: GeoPrincipal, sessionRead: SessionRead | undefined): Promise<void> {
    const connection = new ClientConnection(
      ws,
      principal,
      this.options.region,
      this.connectionLimits,
      this.connectionHooks,
      codecOf(ws.protocol),
    );
    const limit = this.options.limits.maxConnectionsPerUser;
    if (limit > 0 && this.index.countOf(principal.id) >= limit) {
      // Past the upgrade's check while others of this user were being opened.
      ws.on('error', ignoreError);
      this.limitLog.hit(connection, GeoErrorCode.TOO_MANY_CONNECTIONS);
      connection.sendError(new GeoProtocolError(GeoErrorCode.TOO_MANY_CONNECTIONS, tooManyConnections(limit)));
      connection.close(GeoCloseCode.TOO_MANY_CONNECTIONS, 'too many connections for this user');
      return;
    }
    this.connections.set(ws, connection);
    this.index.added(connection);
    this.upkeep.accepted(connection);
    const { pong, error, close, message } = this.socketListeners;
    ws.on('pong', pong).on('error', error).on('close', close).on('message', message);
    // Frames that arrive while the session loads wait in the connection's queue.
    const loading = gate();
    connection.queue = loading.promise;
    connection.expireAt(principal.expiresAt);
    // Bounded by sessions.loadTimeoutMs: a slow state store must not hold back geo.welcome.
    const started = await this.sessions?.start(sessionRead, principal.id, connection);
    connection.session = started?.session;
    // Gone while its session loaded: onClose found no session to end, so end it here.
    if (connection.closed && started) void this.sessions?.end(started.session);
    const welcome: WelcomeFrame = {
      connection_id: connection.id,
      region: this.options.region,
      sender: principal.id,
      ...(principal.expiresAt !== undefined ? { expires_at: new Date(principal.expiresAt).toISOString() } : {}),
      ...(started ? { session_id: started.session.id } : {}),
      ...(started?.restored ? { restored: started.restored } : {}),
      // Consistency reports (geo.report) are asked for only when there are metrics to put them in.
      ...(this.metrics ? { report_ms: this.metrics.reportMs } : {}),
      // A client that only listens sends nothing: it learns how often it must say something.
      ...(this.options.limits.idleTimeoutMs > 0 ? { idle_timeout_ms: this.options.limits.idleTimeoutMs } : {}),
      features: WELCOME_FEATURES,
    };
    connection.send(GeoFrame.WELCOME, welcome);
    loading.open();
  }

  /** What the gauges read at each scrape: walks the connections then, never on the hot path. */
  private readonly gaugeSource = {
    connections: () => this.connections.size,
    memberships: () => {
      let memberships = 0;
      const rooms = new Set<string>();
      for (const connection of this.connections.values()) {
        memberships += connection.rooms.size;
        for (const room of connection.rooms) rooms.add(room);
      }
      return { memberships, rooms: rooms.size };
    },
    transportReady: () => this.transport.isReady(),
  };

  /**
   * Revokes a token everywhere until it would have expired (e.g. on logout or compromise):
   * stored in the transport's state store and announced to every instance, which closes the
   * token's connections (`geo.error UNAUTHORIZED`, then 4003). This instance applies it
   * before this resolves, without waiting for its own announcement.
   */
  async revoke(tokenId: string, expiresAt: number): Promise<void> {
    await this.revocations.revoke(tokenId, expiresAt);
  }

  private onClose(ws: WebSocket, connection: ClientConnection): void {
    if (connection.closed) return;
    connection.markClosed();
    this.connections.delete(ws);
    this.index.removed(connection);
    // Before it leaves its feeds: the session saves the positions they last handed to it.
    if (connection.session) void this.sessions?.end(connection.session);
    this.dispatcher.disconnected(connection);
  }

  /** The next region in directory order: where this region's clients should go while it drains. */
  private suggestRegion(): { region: string; url: string } {
    const names = [...this.options.regions.keys()];
    const next = names[(names.indexOf(this.options.region) + 1) % names.length];
    return { region: next, url: this.options.regions.get(next)!.wsUrl };
  }
}

/** For a socket refused right after it opened, which has no other listener. */
function ignoreError(): void {}

/** A promise and the function that resolves it, apart (`Promise.withResolvers` is Node 22+). */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
