import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { GeoCloseCode, GeoFrame, type GeoWireCodec } from '../protocol/wire.js';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import type { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { FeedMember } from '../fanout/room-feed.js';
import type { Session } from '../sessions/session-keeper.js';
import type { GeoLogRef } from '../transport/log-ref.js';
import type { GeoConnection } from '../decorators/geo-connection.js';
import type { GeoPrincipal } from '../auth/geo-principal.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { packMsgpack } from '../protocol/msgpack.js';
import { FrameWriter, LastFrame, type FrameCompression, type WireFrame } from './wire-frame.js';
import { ExpiryWheel, type Expiring } from './expiry-wheel.js';

/**
 * How long a slow consumer gets to read what is queued before the 1013 close frame: the
 * close frame waits behind that data, and a client that reads nothing never gets there.
 */
const SLOW_CONSUMER_GRACE_MS = 2000;

const loggedFrames = new LastFrame((event) => ({ event: (event as GeoLoggedEnvelope).type, data: event }));
const ephemeralFrames = new LastFrame((event) => ({ event: (event as GeoEnvelopeDraft).type, data: { ...event, seq: null } }));

/** Size of the frame of the event just delivered (built by the delivery, so read at no cost): for the bytes-out metric. */
export function deliveredFrameBytes(event: GeoLoggedEnvelope | GeoEnvelopeDraft, ephemeral: boolean, codec: GeoWireCodec): number {
  return (ephemeral ? ephemeralFrames : loggedFrames).of(event, codec).bytes.length;
}

/** Every connection's credential expiry, in this process: one timer, not one per connection. */
let expiries: ExpiryWheel | undefined;

/** The per-connection limits a connection enforces itself. */
export interface ConnectionLimits {
  rate: { perSecond: number; burst: number };
  refusals: { perSecond: number; burst: number };
  replay: { perSecond: number; burst: number };
  maxBufferedBytes: number;
  /** permessage-deflate (`compression`), for sockets that negotiated it; the writer compresses each event once. */
  compression?: FrameCompression;
}

/** What the server hears from a connection. */
export interface ConnectionHooks {
  /** A feed dropped this connection from a log (e.g. the log was reset). */
  evicted(connection: ClientConnection, log: GeoLogRef): void;
  /** The connection is being closed for not reading fast enough. */
  slowConsumer(connection: ClientConnection): void;
  /** The connection's credential expired (and no `geo.auth` refreshed it). */
  expired(connection: ClientConnection): void;
  /** A `geo.error` was sent (refusals are counted and logged by code). */
  refused?(connection: ClientConnection, code: string): void;
  /** A frame was sent by {@link ClientConnection.send} (set only when metrics are on). */
  sent?(connection: ClientConnection, event: string, frame: string | Uint8Array): void;
}

/** The server's side of one WebSocket: a `GeoConnection` for handlers, a member of feeds. */
export class ClientConnection implements GeoConnection, FeedMember, Expiring {
  readonly id = randomUUID();
  readonly rooms = new Set<string>();
  /** Every frame the client sends takes a token. */
  readonly bucket: TokenBucket;
  /** Every frame the server refuses takes a token; an empty bucket closes the connection. */
  readonly refusals: TokenBucket;
  /** History replayed to this connection, over all its rooms. */
  readonly replayAllowance: TokenBucket;
  /** Frames of this connection run one after another, so one client's publishes keep their order. */
  queue: Promise<void> = Promise.resolve();
  alive = true;
  /** Which of the server's heartbeat turns pings this connection. */
  heartbeatSlice = 0;
  /** Set once the socket closed ({@link markClosed}): frames still queued must not join anything. */
  closed = false;
  /** Rooms and positions kept for a resume elsewhere (when sessions are on). */
  session: Session | undefined;
  /** When the client last sent a frame (for the idle timeout). */
  lastFrameAt = Date.now();
  expirySlot: number | undefined;
  private readonly writer: FrameWriter;

  constructor(
    private readonly socket: WebSocket,
    public principal: GeoPrincipal,
    readonly region: string,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
    /** JSON text frames or MessagePack binary frames, as the client's subprotocol chose. */
    readonly codec: GeoWireCodec = 'json',
  ) {
    this.bucket = new TokenBucket(limits.rate);
    this.refusals = new TokenBucket(limits.refusals);
    this.replayAllowance = new TokenBucket(limits.replay);
    this.writer = new FrameWriter(socket, limits.compression);
  }

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** Bytes queued for this client and not yet handed to the kernel. */
  get backlogBytes(): number {
    return this.socket.bufferedAmount;
  }

  send(event: string, data: unknown): void {
    if (!this.hasRoom()) return;
    // Never compressed by ws (control frames are small): ws compresses asynchronously, and the
    // writer's direct writes would overtake a frame waiting for zlib.
    const frame = this.codec === 'json' ? JSON.stringify({ event, data }) : packMsgpack({ event, data });
    this.socket.send(frame, { binary: this.codec !== 'json', compress: false });
    this.hooks.sent?.(this, event, frame);
  }

  private sendFrame(frame: WireFrame): void {
    if (this.hasRoom()) this.writer.write(frame);
  }

  /**
   * Open, and not past its buffer limit (else it is closed as a slow consumer). The limit is
   * checked at a tick's first write, against what the kernel did not take: a burst handed
   * over in one tick (a tail's batch) is bounded by the batch, and judged at the next tick.
   */
  private hasRoom(): boolean {
    if (!this.isOpen) return false;
    if (this.writer.batching || this.socket.bufferedAmount <= this.limits.maxBufferedBytes) return true;
    this.closeSlowConsumer();
    return false;
  }

  /**
   * Closes a client that does not read fast enough (1013, try again later). Nothing more
   * is queued for it; if it does not read up to the close frame within the grace period,
   * the socket is terminated (the client then sees 1006) and its memory is freed.
   */
  closeSlowConsumer(): void {
    if (!this.isOpen) return;
    this.hooks.slowConsumer(this);
    this.close(GeoCloseCode.SLOW_CONSUMER, 'slow consumer: too many undelivered events; reconnect and resume');
    setTimeout(() => this.socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }

  sendError(error: GeoProtocolError, room?: string): void {
    this.hooks.refused?.(this, error.code);
    this.send(GeoFrame.ERROR, {
      code: error.code,
      message: error.message,
      ...(error.eventId ? { event_id: error.eventId } : {}),
      ...(room ? { room } : {}),
    });
  }

  deliver(event: GeoLoggedEnvelope): void {
    this.sendFrame(loggedFrames.of(event, this.codec));
  }

  deliverEphemeral(envelope: GeoEnvelopeDraft): void {
    this.sendFrame(ephemeralFrames.of(envelope, this.codec));
  }

  evicted(log: GeoLogRef): void {
    this.hooks.evicted(this, log);
  }

  close(code: number, reason: string): void {
    expiries?.cancel(this);
    this.socket.close(code, reason);
  }

  /**
   * Closes the connection when its credential expires, unless `geo.auth` brings a new
   * one first (which calls this again).
   */
  expireAt(expiresAt: number | undefined): void {
    (expiries ??= new ExpiryWheel()).schedule(this, expiresAt);
  }

  expired(): void {
    this.hooks.expired(this);
  }

  /** The socket closed: nothing more happens to this connection, and the wheel lets go of it. */
  markClosed(): void {
    this.closed = true;
    expiries?.cancel(this);
  }

  terminate(): void {
    expiries?.cancel(this);
    this.socket.terminate();
  }

  ping(): void {
    this.socket.ping();
  }
}
