import type { Socket } from 'node:net';
import { GeoClient, type GeoEnvelope } from '@geo-ws/client';
import { msgpackCodec } from '@geo-ws/client/msgpack';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import type { TokenAuthority } from '../load.types.js';
import { FailoverTimeline } from './failover-timeline.js';
import { numberOf, reason, type ClientOptions, type LoadClient, type PublishAck } from './load-client.js';

/** Tokens live this long (the demo authority accepts at most 10 min) and are signed again this long before they expire. */
const TOKEN_LIFETIME_S = 590;
const RESIGN_BEFORE_S = 60;
const keys = new WeakMap<TokenAuthority, Uint8Array>();

/** `{"event":"geo.joined"`: the first bytes of a server frame name its event (the server writes `event` first). */
const JOINED_PREFIX = Buffer.from('{"event":"geo.joined"');
/** The same in MessagePack, as the server writes it (a map header, "event", "geo.joined"). */
const MSGPACK_JOINED_PREFIX = Buffer.from(msgpackCodec.encode({ event: 'geo.joined', data: null }) as Uint8Array).subarray(0, 20);

/**
 * A client on the project's SDK: nearest region = the plan's target order (no probing),
 * failover, resume, outbox, all the SDK's own. What the SDK does not report it is read
 * from the socket: a `geo.joined` frame (to know when every room is back) is recognised
 * by its first bytes, so deliveries are not parsed twice.
 */
export class GeoLoadClient implements LoadClient {
  private client: GeoClient | undefined;
  private socket: WebSocket | undefined;
  private token: { value: string; exp: number } | undefined;
  private lastRegion: string;
  private isUp = false;
  /** connect() finished: from now on, being back in every room is an `up`. */
  private started = false;
  /** Rooms answered `geo.joined` on the current connection. */
  private readonly rejoined = new Set<string>();
  private closed = false;
  private pauseTimer: NodeJS.Timeout | undefined;
  /** Bytes read by the TCP sockets of earlier connections, and the current one's socket. */
  private bytesOfClosed = 0;
  private tcp: Socket | undefined;
  /** Each failover's milestones, for the report's failover timeline. */
  private readonly timeline = new FailoverTimeline();

  constructor(private readonly options: ClientOptions) {
    this.lastRegion = options.plan.home;
  }

  get region(): string {
    return this.client?.region ?? this.lastRegion;
  }

  async connect(): Promise<void> {
    const { plan, sink } = this.options;
    // One class per client, so the SDK's sockets can be reached (paused, sniffed).
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the subclass below is constructed by the SDK
    const owner = this;
    const deflate = this.options.wire === 'deflate';
    class LabSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { perMessageDeflate: deflate, handshakeTimeout: 10_000 });
        owner.attach(this);
      }
    }
    const client = await GeoClient.connect({
      regions: plan.targets.map((target) => ({ name: target.region, url: target.httpUrl, wsUrl: target.wsUrl })),
      regionOrder: plan.targets.map((target) => target.region),
      // The order is given: no 10k×3 probes of /healthz.
      probe: () => Promise.resolve(0),
      probeSamples: 1,
      token: () => this.currentToken(),
      WebSocket: LabSocket,
      ...(this.options.wire === 'msgpack' ? { codec: msgpackCodec } : {}),
    });
    this.client = client;
    if (this.closed) {
      client.close();
      return;
    }
    client.on('state', (state) => {
      if (state === 'open') {
        this.rejoined.clear();
        if (client.region) this.lastRegion = client.region;
        this.timeline.welcomed();
      } else if (this.isUp) {
        this.isUp = false;
        this.timeline.left();
        sink.down();
      }
    });
    client.on('gap', ({ room }) => sink.gap(room));
    client.on('error', ({ code }) => sink.error(code));
    client.on('reconnect', ({ code, delayMs }) => {
      this.timeline.retrying(delayMs);
      sink.error(`close-${code}`);
    });
    if (client.region) this.lastRegion = client.region;
    const handler = (envelope: GeoEnvelope): void => {
      this.timeline.event();
      sink.message(envelope.room_id, numberOf((envelope.data as { text?: unknown } | null)?.text), envelope.seq ?? -1);
    };
    await Promise.all(plan.rooms.map((room) => client.join(room, handler)));
    this.isUp = client.state === 'open';
    this.started = true;
    // Lost again while the first joins were answered: that is a disconnect like any other.
    if (!this.isUp) {
      this.timeline.left();
      sink.down();
    }
  }

  async publish(room: string, eventId: string, text: string): Promise<PublishAck> {
    if (!this.client) throw new Error('NOT_CONNECTED');
    try {
      const ack = await this.client.publish(room, 'chat.message', { text }, eventId);
      return { seq: ack.seq ?? undefined, duplicate: ack.duplicate };
    } catch (error) {
      throw new Error((error as { code?: string }).code ?? reason(error), { cause: error });
    }
  }

  pauseReading(ms: number): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    clearTimeout(this.pauseTimer);
    socket.pause();
    this.pauseTimer = setTimeout(() => socket.resume(), ms);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.pauseTimer);
    this.client?.close();
  }

  failovers(): number[] {
    return this.timeline.values;
  }

  bytesRead(): number {
    return this.bytesOfClosed + (this.tcp?.bytesRead ?? 0);
  }

  private attach(socket: WebSocket): void {
    this.socket = socket;
    this.timeline.attempt();
    socket.once('open', () => {
      if (this.socket === socket) this.timeline.socketOpen();
    });
    socket.on('error', () => undefined);
    socket.once('upgrade', (response) => {
      if (this.tcp) this.bytesOfClosed += this.tcp.bytesRead;
      this.tcp = response.socket;
    });
    const msgpack = this.options.wire === 'msgpack';
    const prefix = msgpack ? MSGPACK_JOINED_PREFIX : JOINED_PREFIX;
    socket.on('message', (data, isBinary) => {
      if (
        isBinary !== msgpack ||
        !Buffer.isBuffer(data) ||
        data.length > 1024 ||
        data.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0
      )
        return;
      this.onJoined(data, msgpack);
    });
  }

  private onJoined(data: Buffer, msgpack: boolean): void {
    let room: unknown;
    try {
      const frame = (msgpack ? msgpackCodec.decode(data) : JSON.parse(data.toString())) as { data?: { room?: unknown; scope?: unknown } };
      if (frame.data?.scope === 'regional') return;
      room = frame.data?.room;
    } catch {
      return;
    }
    if (typeof room !== 'string') return;
    this.rejoined.add(room);
    // The first connection's joins are connect()'s business; later ones bring the client back up.
    if (this.isUp || !this.started) return;
    if (this.options.plan.rooms.every((name) => this.rejoined.has(name))) {
      this.isUp = true;
      this.timeline.joined();
      this.options.sink.up();
    }
  }

  private async currentToken(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    if (this.token && this.token.exp - now > RESIGN_BEFORE_S) return this.token.value;
    const auth = this.options.auth;
    if (!auth) throw new Error('geo clients need the plan’s auth');
    let key = keys.get(auth);
    if (!key) {
      key = new TextEncoder().encode(auth.secret);
      keys.set(auth, key);
    }
    const exp = now + TOKEN_LIFETIME_S;
    const value = await new SignJWT({ regions: auth.regions, rooms: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(this.options.plan.id)
      .setIssuer(auth.issuer)
      .setAudience(auth.audience)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(key);
    this.token = { value, exp };
    return value;
  }
}
