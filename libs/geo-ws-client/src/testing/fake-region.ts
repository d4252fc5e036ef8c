// Test support for the client's specs; not part of the package (excluded from its build).
import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { jsonCodec } from '../codec.js';
import { msgpackCodec } from '../msgpack.js';
import type { GeoEnvelope, GeoRegion } from '../protocol.js';
import { FakeLogs } from './fake-logs.js';
import { sleep } from './helpers.js';

/** How the fake answers one publish attempt. */
export type Answer = 'store' | 'store-no-ack' | 'silent' | 'drop' | { code: string } | { delayMs: number };

/** A publish frame the fake received. */
export interface Received {
  eventId: string;
  room: string;
  /** 1 for the first frame with this event_id, 2 for its first resend, … */
  attempt: number;
  text: unknown;
}

/** The data of a `geo.join` the fake received. */
export interface JoinRequest {
  room: string;
  since?: number;
  epoch?: string;
  regional?: { since?: number; epoch?: string };
}

/** One connection the fake accepted. */
export interface FakeConnection {
  readonly socket: WebSocket;
  /** The URL the client connected to (query parameters: `session`, the app's own). */
  readonly url: URL;
  /** The token of the `bearer.<token>` subprotocol. */
  readonly token: string | undefined;
  /** The codec the client chose by its subprotocol: frames both ways are MessagePack binary frames or JSON text. */
  readonly codec: 'json' | 'msgpack';
  /** Whether each frame the client sent was binary, in order. */
  readonly binaryFrames: boolean[];
  /** Rooms this connection joined. */
  readonly rooms: Set<string>;
  /** Every frame the client sent on it, in order. */
  readonly frames: { event: string; data: any }[];
  /** The close code the fake saw (1006 without a close frame); unset while open. */
  closeCode?: number;
  /** Sends a frame to the client, if the connection is open (a function property: it may be passed around unbound). */
  readonly send: (event: string, data: unknown) => void;
}

/**
 * A region that speaks wire protocol v1 (docs/PROTOCOL.md) on a real `ws` server on
 * 127.0.0.1, with hooks that let each test decide how it answers: publishes, joins,
 * the welcome, pings, token refreshes.
 */
export class FakeRegion {
  /** Every publish frame, in arrival order. */
  readonly received: Received[] = [];
  /** The room of every geo.join, in arrival order. */
  readonly joins: string[] = [];
  /** Every geo.join, in arrival order (each room of a batch as its own). */
  readonly joinRequests: JoinRequest[] = [];
  /** The rooms of every `geo.join { rooms }` frame, one list per frame. */
  readonly batchJoins: string[][] = [];
  /** `features` of the welcome, as a server lists what it speaks (`join.rooms`); none by default, as an older server. */
  features: string[] = [];
  /** Every connection accepted, in order. */
  readonly connections: FakeConnection[] = [];
  /** Every token received with geo.auth. */
  readonly refreshedTokens: string[] = [];
  /** How each publish attempt is answered (default: stored and acked). */
  answer: (frame: Received) => Answer = () => 'store';
  /** How each join is answered (default: joined; `'silent'`: never). */
  joinAnswer: (room: string) => 'ok' | 'silent' | { code: string } = () => 'ok';
  /** The welcome's fields beyond connection_id, region and sender; `'silent'`: no welcome at all. */
  welcome: (connection: FakeConnection) => Record<string, unknown> | 'silent' = () => ({});
  /** Answer geo.ping with geo.pong. */
  answerPings = true;
  /** A black hole: the sockets stay open, nothing is read or sent (see `mute()`). */
  muted = false;
  /** Say `contiguous: true` in geo.joined, as a server on memory or Redis (its logs are numbered 1, 2, 3… as these are). Off: as NATS. */
  contiguous = false;
  /** The `expires_at` of the answer to geo.auth. */
  authExpiresAt: (token: string) => string | null = () => null;
  /** Refuse upgrades (HTTP 503), as a region that is down or draining. */
  refusing = false;
  /** Refuses the upgrade with this token, as the server does: HTTP status and JSON body `{ code, message }`. */
  refuse: (token: string | undefined) => { status: number; code: string; message: string } | undefined = () => undefined;
  /** The token of every upgrade refused by `refuse`. */
  readonly refusedTokens: (string | undefined)[] = [];
  /** Every `GET /geo/handshake`: its token (`Authorization: Bearer`) and query. */
  readonly handshakeChecks: { token: string | undefined; query: URLSearchParams }[] = [];
  /** Serve `GET /geo/handshake` (else 404, as a region without it). */
  servesHandshakeCheck = true;
  private readonly attempts = new Map<string, number>();

  private constructor(
    readonly name: string,
    readonly logs: FakeLogs,
    private readonly server: WebSocketServer,
    private readonly httpServer: http.Server,
  ) {
    logs.regions.add(this);
    server.on('connection', (socket, request) =>
      this.accept(socket, new URL(request.url ?? '/', 'ws://fake'), request.headers['sec-websocket-protocol']),
    );
  }

  /** Starts a region named `name` (default `eu`); regions started with the same `logs` share their rooms. */
  static async start(options: { name?: string; logs?: FakeLogs } = {}): Promise<FakeRegion> {
    // Clients learn the port only once `region` below is set.
    const httpServer = http.createServer((request, response) => region.onHttp(request, response));
    const server = new WebSocketServer({
      server: httpServer,
      handleProtocols: (protocols) =>
        [...protocols].find((protocol) => protocol === 'geo-ws.v1' || protocol === 'geo-ws.v1.msgpack') ?? false,
      verifyClient: ({ req }, callback) => {
        if (region.refusing) return callback(false, 503);
        const token = bearerOf(req.headers['sec-websocket-protocol']);
        const refusal = region.refuse(token);
        if (!refusal) return callback(true);
        region.refusedTokens.push(token);
        callback(false, refusal.status, JSON.stringify({ code: refusal.code, message: refusal.message }));
      },
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const region = new FakeRegion(options.name ?? 'eu', options.logs ?? new FakeLogs(), server, httpServer);
    return region;
  }

  /** HTTP: `/healthz`, and the handshake check `/geo/handshake`, answered as the upgrade would be. */
  private onHttp(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    if (url.pathname === '/healthz') return void response.end(JSON.stringify({ status: 'ok', region: this.name }));
    if (url.pathname !== '/geo/handshake' || !this.servesHandshakeCheck) return void response.writeHead(404).end();
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    this.handshakeChecks.push({ token, query: url.searchParams });
    if (this.refusing) return void response.writeHead(503).end(JSON.stringify({ code: 'UNAVAILABLE', message: 'draining' }));
    const refusal = this.refuse(token);
    if (!refusal) return void response.writeHead(204).end();
    response
      .writeHead(refusal.status, { 'content-type': 'application/json' })
      .end(JSON.stringify({ code: refusal.code, message: refusal.message }));
  }

  /** Cuts every connection and refuses new ones until `resume()` (the region is away). */
  async away(client: { state: string }): Promise<void> {
    this.refusing = true;
    this.dropAll();
    while (client.state !== 'reconnecting') await sleep(2);
  }

  /**
   * Becomes a black hole: the open sockets stay open (no close, no FIN), but nothing the
   * client sends is read and nothing is sent to it, as a region whose process hangs or
   * whose network drops every packet.
   */
  mute(): void {
    this.muted = true;
    for (const connection of this.open) connection.socket.pause();
  }

  /** Accepts connections again. */
  resume(): void {
    this.refusing = false;
  }

  get port(): number {
    return (this.httpServer.address() as { port: number }).port;
  }

  get region(): GeoRegion {
    return { name: this.name, url: `http://127.0.0.1:${this.port}`, wsUrl: `ws://127.0.0.1:${this.port}/ws` };
  }

  /** The directory with this region only. */
  get regions(): GeoRegion[] {
    return [this.region];
  }

  /** Connections that are open now. */
  get open(): FakeConnection[] {
    return this.connections.filter((connection) => connection.closeCode === undefined);
  }

  /** Event ids of a room's log, in seq order. */
  stored(room: string): string[] {
    return this.logs.log(room).map((event) => event.event_id);
  }

  /** Ids of the publish frames received, optionally from index `from` on. */
  ids(from = 0): string[] {
    return this.received.slice(from).map((frame) => frame.eventId);
  }

  /** Another member publishes to `room`: stored and delivered to every joined connection. */
  emit(room: string, data: unknown = {}, type = 'chat.message'): GeoEnvelope {
    return this.logs.append(room, {
      event_id: `x${this.logs.log(room).length + 1}`,
      type,
      sender: 'someone',
      timestamp: new Date().toISOString(),
      region: this.name,
      data,
    });
  }

  /** Sends a frame to every open connection. */
  sendAll(event: string, data: unknown): void {
    for (const connection of this.open) connection.send(event, data);
  }

  /** The region drains: every open connection is told to go to `to`. */
  drain(to: GeoRegion): void {
    this.sendAll('geo.reconnect', { region: to.name, url: to.wsUrl });
  }

  /** The server forgets that the open connections joined `room` (as after a log reset). */
  forget(room: string): void {
    for (const connection of this.connections) connection.rooms.delete(room);
  }

  /** Closes every open connection with a close frame. */
  closeAll(code: number, reason = ''): void {
    for (const connection of this.open) connection.socket.close(code, reason);
  }

  /** Cuts every connection without a close handshake. */
  dropAll(): void {
    for (const connection of this.open) connection.socket.terminate();
  }

  async close(): Promise<void> {
    this.logs.regions.delete(this);
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.httpServer.closeAllConnections();
    await new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
  }

  /** Delivers a stored event to the connections of this region that joined its room. */
  deliver(event: GeoEnvelope): void {
    for (const connection of this.open) if (connection.rooms.has(event.room_id)) connection.send(event.type, event);
  }

  private accept(socket: WebSocket, url: URL, protocolHeader: string | undefined): void {
    const connection: FakeConnection = {
      socket,
      url,
      token: bearerOf(protocolHeader),
      codec: socket.protocol === 'geo-ws.v1.msgpack' ? 'msgpack' : 'json',
      binaryFrames: [],
      rooms: new Set(),
      frames: [],
      send: (event, data) => {
        if (socket.readyState !== socket.OPEN || this.muted) return;
        if (connection.codec === 'msgpack') socket.send(msgpackCodec.encode({ event, data }));
        else socket.send(JSON.stringify({ event, data }));
      },
    };
    this.connections.push(connection);
    socket.on('close', (code) => (connection.closeCode = code));
    const welcome = this.welcome(connection);
    if (welcome !== 'silent')
      connection.send('geo.welcome', {
        connection_id: `c${this.connections.length}`,
        region: this.name,
        sender: 'tester',
        ...(this.features.length > 0 ? { features: this.features } : {}),
        ...welcome,
      });
    // With ws's default binaryType ('nodebuffer') a message arrives as one Buffer.
    socket.on('message', (raw, binary) => {
      connection.binaryFrames.push(binary);
      const codec = connection.codec === 'msgpack' ? msgpackCodec : jsonCodec;
      this.onFrame(connection, codec.decode(raw) as { event: string; data: any });
    });
  }

  private onFrame(connection: FakeConnection, frame: { event: string; data: any }): void {
    connection.frames.push(frame);
    const { send, rooms } = connection;
    switch (frame.event) {
      case 'geo.join':
        if (!Array.isArray(frame.data.rooms)) return this.onJoin(connection, frame.data as JoinRequest);
        // A batch (feature join.rooms): each room answered as its own join; refused whole where the server would.
        if (!this.features.includes('join.rooms'))
          return send('geo.error', { code: 'INVALID_ENVELOPE', message: 'geo.join: room must be 1-128 characters' });
        this.batchJoins.push((frame.data.rooms as JoinRequest[]).map((entry) => entry.room));
        for (const entry of frame.data.rooms as JoinRequest[]) this.onJoin(connection, entry);
        return;
      case 'geo.leave':
        rooms.delete(frame.data.room);
        return send('geo.left', { room: frame.data.room });
      case 'geo.ping':
        if (this.answerPings) send('geo.pong', frame.data);
        return;
      case 'geo.auth':
        this.refreshedTokens.push(frame.data.token);
        return send('geo.authed', { expires_at: this.authExpiresAt(frame.data.token) });
    }
    const { event_id: eventId, room_id: room } = frame.data;
    if (!rooms.has(room)) return send('geo.error', { code: 'NOT_JOINED', message: 'not joined', event_id: eventId, room });
    const attempt = (this.attempts.get(eventId) ?? 0) + 1;
    this.attempts.set(eventId, attempt);
    const received = { eventId, room, attempt, text: frame.data.data?.text };
    this.received.push(received);
    const answer = this.answer(received);
    const store = (ack: boolean) => this.store(connection, frame.event, room, eventId, frame.data.data, ack);
    if (answer === 'silent') return;
    if (answer === 'drop') return connection.socket.terminate();
    if (typeof answer === 'object' && 'delayMs' in answer) {
      setTimeout(() => store(true), answer.delayMs);
      return;
    }
    if (answer !== 'store' && answer !== 'store-no-ack')
      return send('geo.error', { code: answer.code, message: `refused: ${answer.code}`, event_id: eventId, room });
    store(answer === 'store');
  }

  /** G3: answers `geo.joined`, then the events after `since` (all retained ones after another epoch), then live. */
  private onJoin(connection: FakeConnection, request: JoinRequest): void {
    const { room } = request;
    this.joins.push(room);
    this.joinRequests.push(request);
    const answer = this.joinAnswer(room);
    if (answer === 'silent') return;
    if (answer !== 'ok') return connection.send('geo.error', { code: answer.code, message: 'join refused', room });
    connection.rooms.add(room);
    const log = this.logs.log(room);
    const epoch = this.logs.epoch(room);
    const trimmedTo = this.logs.trimmedTo(room);
    let since = request.since ?? log.length;
    let recovered = true;
    if (request.since !== undefined && request.epoch !== undefined && request.epoch !== epoch) {
      since = 0;
      recovered = false;
    }
    if (since < trimmedTo) recovered = false;
    connection.send('geo.joined', { room, seq: log.length, epoch, recovered, ...(this.contiguous ? { contiguous: true } : {}) });
    for (const event of log.slice(Math.max(since, trimmedTo))) connection.send(event.type, event);
  }

  /** G1: an event_id is stored once per room; a retry is acked with the original seq. */
  private store(connection: FakeConnection, type: string, room: string, eventId: string, data: unknown, ack: boolean): void {
    const existing = this.logs.log(room).find((event) => event.event_id === eventId);
    if (existing) {
      if (ack) connection.send('geo.ack', { event_id: eventId, seq: existing.seq, duplicate: true });
      return;
    }
    const stored = this.logs.append(room, {
      event_id: eventId,
      type,
      sender: 'tester',
      timestamp: new Date().toISOString(),
      region: this.name,
      data,
    });
    if (ack) connection.send('geo.ack', { event_id: eventId, seq: stored.seq });
  }
}

/** The token of the `bearer.<token>` subprotocol. */
function bearerOf(protocolHeader: string | undefined): string | undefined {
  return (protocolHeader ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .find((protocol) => protocol.startsWith('bearer.'))
    ?.slice('bearer.'.length);
}
