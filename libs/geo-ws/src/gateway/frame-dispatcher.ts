import { Logger } from '@nestjs/common';
import type { RawData } from 'ws';
import { GeoCloseCode, GeoFrame } from '../protocol/wire.js';
import type { AccessPolicy } from '../auth/access-policy.js';
import { roomAllowed } from '../auth/room-patterns.js';
import type { HandshakeAuth } from '../auth/handshake-auth.js';
import type { GeoHandler } from '../discovery/geo-handler.explorer.js';
import { inboundEventOf } from '../envelope/envelope.rules.js';
import type { GeoEnvelopeDraft } from '../envelope/geo-envelope.interface.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { toProtocolError } from '../errors/to-protocol-error.js';
import type { RoomFeeds } from '../fanout/room-feeds.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import type { RoomPresence } from '../presence/room-presence.js';
import {
  eventIdOf,
  parseFrame,
  parseJoin,
  parseJoinBatch,
  parseLeave,
  parseMsgpackFrame,
  peekFrame,
  roomOf,
  type Frame,
  type JoinedFrame,
  type JoinOutcome,
  type JoinPosition,
  type JoinRequest,
} from '../protocol/frames.js';
import type { GeoTransport } from '../transport/geo-transport.interface.js';
import { globalLog, regionalLog, type GeoLogRef } from '../transport/log-ref.js';
import type { ClientConnection } from './client-connection.js';
import type { ConnectionIndex } from './connection-index.js';
import { checkFrameType, isClientFault, rawToBuffer } from './inbound-frame.js';
import { isJoinBatchFrame, paidRooms, runJoinBatch } from './join-batch.js';
import type { LimitLog } from './limit-log.js';
import { parseClientReport, REPORT_FRAME } from '../metrics/client-report.js';
import { OTHER, type GeoMetrics } from '../metrics/geo-metrics.js';

/**
 * Wire protocol v1 on an open connection (the seam Nest's `WebSocketsController` and
 * context creator cover): parses each frame, and runs `geo.join`, `geo.leave`,
 * `geo.ping`, `geo.auth` and publishes through the `@GeoSubscribe` handlers, one frame
 * of a connection after another. Refusals become `geo.error` frames.
 */
export class FrameDispatcher {
  private readonly logger = new Logger(FrameDispatcher.name);
  private handlers = new Map<string, GeoHandler>();
  private hasRegionalHandlers = false;

  constructor(
    private readonly options: ResolvedGeoWsOptions,
    private readonly transport: GeoTransport,
    private readonly feeds: RoomFeeds,
    private readonly access: AccessPolicy,
    private readonly auth: HandshakeAuth,
    private readonly index: ConnectionIndex,
    private readonly limitLog: LimitLog,
    private readonly presence: RoomPresence | undefined,
    private readonly metrics: GeoMetrics | null = null,
  ) {}

  /** The `@GeoSubscribe` handlers found at bootstrap, by event name. */
  useHandlers(handlers: Map<string, GeoHandler>): void {
    this.handlers = handlers;
    this.hasRegionalHandlers = [...handlers.values()].some((handler) => handler.subscription.scope === 'regional');
  }

  /** One WebSocket message: rate, size, depth and shape checked here; the rest in order, on the connection's queue. */
  onMessage(connection: ClientConnection, raw: RawData, isBinary: boolean): void {
    connection.lastFrameAt = Date.now();
    const bytes = rawToBuffer(raw);
    const { maxPayloadBytes, maxDepth } = this.options.limits;
    let frame: Partial<Frame> = {};
    let paid = 1;
    try {
      // Taken before parsing: malformed frames cost the sender as much as valid ones.
      const withinRate = connection.bucket.take();
      const msgpack = connection.codec === 'msgpack';
      checkFrameType(msgpack, isBinary, bytes);
      if (bytes.length > maxPayloadBytes) {
        frame = peekFrame(msgpack ? bytes : bytes.toString('utf8')); // only to name the refused request
        throw new GeoProtocolError(GeoErrorCode.PAYLOAD_TOO_LARGE, `frame is ${bytes.length} bytes; the limit is ${maxPayloadBytes}`);
      }
      const decoded = msgpack ? parseMsgpackFrame(bytes, maxDepth) : parseFrame(bytes.toString('utf8'), maxDepth);
      frame = decoded;
      // A batch join pays per room; the rooms it cannot pay for are refused one by one.
      if (isJoinBatchFrame(decoded))
        paid = paidRooms(decoded.data.rooms, withinRate, connection.bucket, this.options.limits.maxRoomsPerConnection);
      else if (!withinRate)
        throw new GeoProtocolError(GeoErrorCode.RATE_LIMITED, 'too many frames; slow down and resend with the same event_id');
    } catch (error) {
      this.metrics?.frameReceived(frame.event ?? OTHER, connection.codec);
      this.refuse(connection, toProtocolError(error, eventIdOf(frame.data)).error, roomOf(frame.data));
      return;
    }
    const parsed = frame as Frame;
    this.metrics?.frameReceived(parsed.event, connection.codec);
    connection.queue = connection.queue.then(() => this.handleFrame(connection, parsed, paid));
  }

  /** `paid`: the rooms of a batch join the rate limit let through. */
  private async handleFrame(connection: ClientConnection, frame: Frame, paid: number): Promise<void> {
    // Closed, or being closed by the server (token revoked, region refused...): what it sent
    // after that is not acted on, even while the close handshake is under way.
    if (connection.closed || !connection.isOpen) return;
    try {
      switch (frame.event) {
        case GeoFrame.JOIN:
          if (isJoinBatchFrame(frame)) return await this.joinBatch(connection, frame.data, paid);
          return await this.join(connection, parseJoin(frame.data));
        case GeoFrame.LEAVE:
          return this.leave(connection, frame.data);
        case GeoFrame.PING:
          return connection.send(GeoFrame.PONG, frame.data ?? null);
        case GeoFrame.AUTH:
          return await this.refresh(connection, frame.data);
        case REPORT_FRAME:
          return this.report(frame.data);
        default:
          return await this.publish(connection, frame);
      }
    } catch (error) {
      // A batch refused whole names no room: the client must not read it as one room's refusal.
      this.fail(connection, frame.event, error, eventIdOf(frame.data), isJoinBatchFrame(frame) ? undefined : roomOf(frame.data));
    }
  }

  /** A request failed: logged if unexpected, answered with `geo.error`. */
  private fail(connection: ClientConnection, event: string, error: unknown, eventId: string | undefined, room: string | undefined): void {
    const { error: protocolError, unexpected } = toProtocolError(error, eventId);
    if (unexpected) this.logger.error(`${event} from ${connection.principal.id} failed`, stackOf(error));
    this.refuse(connection, protocolError, room);
  }

  /**
   * Answers a frame with `geo.error`. Refusals the client brought on itself take a token
   * from its refusal budget; once that is empty the connection is closed (1008) rather
   * than answered for ever, so garbage cannot turn into a stream of error frames.
   */
  private refuse(connection: ClientConnection, error: GeoProtocolError, room?: string): void {
    if (isClientFault(error.code)) {
      if (error.code === GeoErrorCode.RATE_LIMITED || error.code === GeoErrorCode.PAYLOAD_TOO_LARGE)
        this.limitLog.hit(connection, error.code);
      if (!connection.refusals.take()) {
        this.limitLog.hit(connection, 'TOO_MANY_REFUSALS');
        connection.close(GeoCloseCode.POLICY_VIOLATION, 'too many refused frames');
        return;
      }
    }
    connection.sendError(error, room);
  }

  /**
   * `geo.join { rooms }`: each room joined (access, TOO_MANY_ROOMS, replay) and answered as
   * its own `geo.join` would be, several at a time; the frame's turn lasts until all are.
   */
  private async joinBatch(connection: ClientConnection, data: { rooms: unknown }, paid: number): Promise<void> {
    const requests = parseJoinBatch(data, this.options.limits.maxRoomsPerConnection);
    await runJoinBatch(requests, paid, {
      join: (request) => this.join(connection, request),
      refuse: (request, error) => this.fail(connection, GeoFrame.JOIN, error, undefined, request.room),
      stopped: () => connection.closed || !connection.isOpen,
    });
  }

  private async join(connection: ClientConnection, request: JoinRequest): Promise<void> {
    const checking = this.access.assertMayUse(connection.principal, request.room);
    if (checking) {
      await checking; // a stale revocation status is read first (one read, shared)
      if (!connection.isOpen) return;
    }
    if (connection.rooms.has(request.room)) this.leaveLogs(connection, request.room);
    else if (connection.rooms.size >= this.options.limits.maxRoomsPerConnection) {
      this.limitLog.hit(connection, GeoErrorCode.TOO_MANY_ROOMS);
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
  private joinLog(connection: ClientConnection, log: GeoLogRef, position: JoinPosition, scope: 'regional' | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let announced = false;
      const announce = (outcome: JoinOutcome): void => {
        announced = true;
        this.metrics?.joined(outcome.recovered);
        const joined: JoinedFrame = { room: log.room, ...(scope ? { scope } : {}), ...outcome };
        if (this.transport.contiguousSeq) joined.contiguous = true;
        connection.send(GeoFrame.JOINED, joined);
        // The session starts where the client is before the replay; later saves read where the
        // feed has taken it since (deliveries never touch the session).
        const before = !outcome.recovered ? 0 : (position.since ?? outcome.seq);
        if (!scope) connection.session?.joined(log.room, Math.min(before, outcome.seq), outcome.epoch);
        resolve();
      };
      this.feeds.join(log, connection, position, announce).then(
        () => {
          // The feed stopped (its log was reset, its tail died) before the outcome was known:
          // the join ends without geo.joined, and must not hold this connection's frames.
          if (!announced)
            reject(new GeoProtocolError(GeoErrorCode.UNAVAILABLE, `room "${log.room}": its feed stopped during the join; join it again`));
        },
        (error: unknown) => {
          if (!announced) return reject(error instanceof Error ? error : new Error(String(error)));
          // Failed after geo.joined was sent (the replay broke): the client must rejoin.
          if (connection.rooms.delete(log.room)) {
            this.leaveLogs(connection, log.room);
            connection.sendError(toProtocolError(error).error, log.room);
          }
        },
      );
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

  /** The connection closed: it leaves every room. */
  disconnected(connection: ClientConnection): void {
    for (const room of connection.rooms) this.leaveLogs(connection, room);
    connection.rooms.clear();
  }

  private leaveLogs(connection: ClientConnection, room: string): void {
    this.presence?.left(room, connection.id);
    this.feeds.leave(globalLog(room), connection);
    if (this.hasRegionalHandlers) this.feeds.leave(regionalLog(room, this.options.region), connection);
  }

  private async publish(connection: ClientConnection, frame: Frame): Promise<void> {
    const handler = this.handlers.get(frame.event);
    if (!handler) {
      throw new GeoProtocolError(GeoErrorCode.UNKNOWN_EVENT, `no handler for event "${frame.event}"`, eventIdOf(frame.data));
    }
    const inbound = inboundEventOf(frame.data);
    if (!connection.rooms.has(inbound.room_id)) {
      throw new GeoProtocolError(GeoErrorCode.NOT_JOINED, `join room "${inbound.room_id}" before publishing to it`, inbound.event_id);
    }
    const checking = this.access.assertMayUse(connection.principal, inbound.room_id, inbound.event_id);
    if (checking) await checking; // a stale revocation status is read first (one read, shared)
    this.access.assertEventAllowedHere(frame.event, handler.subscription.regions, inbound.event_id);
    if (handler.subscription.critical) await this.access.revalidate(connection.principal, inbound.event_id);
    const envelope = await handler.invoke(connection, frame.data as object);
    if (!isSealedFor(envelope, inbound.event_id, inbound.room_id)) {
      throw new GeoProtocolError(
        GeoErrorCode.REJECTED,
        'the handler pipeline did not produce an envelope; nothing was appended',
        inbound.event_id,
      );
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
    const started = this.metrics ? performance.now() : 0;
    void this.transport.append(log, envelope).then(
      (result) => {
        this.metrics?.appended((performance.now() - started) / 1000, result.duplicate);
        connection.send(GeoFrame.ACK, {
          event_id: envelope.event_id,
          seq: result.seq,
          ...(result.duplicate ? { duplicate: true } : {}),
        });
      },
      (error: unknown) => {
        this.metrics?.appendFailed((performance.now() - started) / 1000);
        const { error: protocolError, unexpected } = toProtocolError(error, envelope.event_id);
        if (unexpected) this.logger.error(`append of ${envelope.event_id} failed`, stackOf(error));
        connection.sendError(protocolError, envelope.room_id);
      },
    );
  }

  /**
   * `geo.report`: the client's consistency counts since its last report. Validated even
   * when metrics are off (the server then did not ask for it); never answered.
   */
  private report(data: unknown): void {
    const report = parseClientReport(data);
    this.metrics?.clientReport(report);
  }

  /**
   * `geo.auth { token }`: a fresh token for the same identity, in-band. Its claims replace the
   * old ones at once: a token no longer valid in this region closes the connection (4004, as
   * the upgrade would refuse it), and rooms its `rooms` no longer allow are left, each with
   * `geo.left { room, code: 'FORBIDDEN' }`, before `geo.authed`.
   */
  private async refresh(connection: ClientConnection, data: unknown): Promise<void> {
    const token = (data as { token?: unknown } | null)?.token;
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw new GeoProtocolError(GeoErrorCode.INVALID_ENVELOPE, 'geo.auth: data must be { token }');
    }
    const principal = await this.auth.verify({ url: new URL(`http://localhost${this.options.path}`), token }).catch((error: unknown) => {
      // Revoked (UNAUTHORIZED) or the revocation list unreadable (UNAVAILABLE): said as such.
      if (error instanceof GeoProtocolError) throw new GeoProtocolError(error.code, `geo.auth: ${error.message}`);
      return null;
    });
    if (!principal) throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'geo.auth: the token is not valid');
    if (principal.id !== connection.principal.id)
      throw new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'geo.auth: the token is for another identity');
    // The new claims apply from now on, to what the connection holds too: a refresh must not
    // carry over a region or a room the new token no longer grants.
    if (!this.access.mayConnect(principal)) {
      this.limitLog.hit(connection, 'REGION_FORBIDDEN');
      connection.sendError(
        new GeoProtocolError(GeoErrorCode.FORBIDDEN, `geo.auth: this token may not be used in region "${this.options.region}"`),
      );
      connection.close(GeoCloseCode.REGION_FORBIDDEN, 'token not valid in this region');
      return;
    }
    const previous = connection.principal;
    connection.principal = principal;
    this.index.retokened(connection, previous);
    connection.expireAt(principal.expiresAt);
    for (const room of connection.rooms) {
      if (roomAllowed(principal.rooms, room)) continue;
      connection.rooms.delete(room); // deleting the current entry of a Set keeps the iteration going
      this.leaveLogs(connection, room);
      connection.session?.left(room);
      connection.send(GeoFrame.LEFT, {
        room,
        code: GeoErrorCode.FORBIDDEN,
        message: `geo.auth: the new token may not use room "${room}"; it was left`,
      });
    }
    connection.send(GeoFrame.AUTHED, {
      expires_at: principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString(),
    });
  }

  /** The connection's token expired without a `geo.auth` refresh. */
  expire(connection: ClientConnection): void {
    this.limitLog.hit(connection, 'TOKEN_EXPIRED');
    connection.sendError(new GeoProtocolError(GeoErrorCode.UNAUTHORIZED, 'the token expired; reconnect with a new one'));
    connection.close(GeoCloseCode.TOKEN_EXPIRED, 'token expired');
  }

  /** A feed dropped the connection from a log (e.g. the log was reset): it must join again. */
  evicted(connection: ClientConnection, log: GeoLogRef): void {
    if (!connection.rooms.delete(log.room)) return;
    this.leaveLogs(connection, log.room);
    connection.sendError(new GeoProtocolError(GeoErrorCode.UNAVAILABLE, `room "${log.room}" log was reset; join it again`), log.room);
  }
}

/** A stack for the log, whatever was thrown. */
function stackOf(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

function isSealedFor(value: unknown, eventId: string, roomId: string): value is GeoEnvelopeDraft {
  const envelope = value as GeoEnvelopeDraft | undefined;
  return !!envelope && envelope.event_id === eventId && envelope.room_id === roomId && typeof envelope.sender === 'string';
}
