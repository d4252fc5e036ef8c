import { Dialer } from './dialer/dialer.js';
import type { RankedRegion } from './dialer/nearest-region.js';
import { GeoClientError } from './errors.js';
import { ClientEvents, type ConnectionState, type EventDelivery, type GeoClientEvents, type RoomHandler } from './geo-client-events.js';
import { checkOptions } from './dialer/connection-options.js';
import type { GeoClientOptions } from './geo-client-options.js';
import { newEventId } from './outbox/event-id.js';
import { Outbox } from './outbox/outbox.js';
import {
  GeoFrame,
  type AckFrame,
  type AuthedFrame,
  type ErrorFrame,
  type Frame,
  type GeoEnvelope,
  type JoinedFrame,
  type LeftFrame,
} from './protocol.js';
import { ConsistencyCounter, type ConsistencyCounts } from './rooms/consistency.js';
import { ConsistencyReports } from './rooms/consistency-reports.js';
import { RoomTracker } from './rooms/room-tracker.js';
import { TokenRefresher } from './token/token-refresher.js';

export { GeoClientError, newEventId };
export type { ConnectionState, EventDelivery, GeoClientEvents, GeoClientOptions, RoomHandler };

/**
 * A connection to the nearest region of a geo-ws deployment that survives anything the
 * network or a region does: it reconnects with jittered backoff, fails over to the next
 * nearest region, resumes every room from its last `seq` (no gap, no duplicate), and
 * resends unacknowledged publishes with their original `event_id` (applied once).
 *
 * A facade over four parts, each with its own timers: the dialer (regions, probes,
 * handshake, failover, heartbeat), the room tracker (memberships, positions, restore,
 * consistency), the outbox (queues, retries, acks) and the token refresher. It wires them
 * and routes the frames; the parts never reach into each other.
 *
 * @example
 * const client = await GeoClient.connect({ directoryUrl: 'https://eu.chat.example', token });
 * await client.join('lobby', (event) => render(event));
 * await client.publish('lobby', 'chat.message', { text: 'hi' });
 *
 * @example
 * // To be able to give up while connecting: close() rejects the pending connect() (CLOSED).
 * const client = new GeoClient({ directoryUrl: 'https://eu.chat.example', token });
 * const connecting = client.connect();
 * setTimeout(() => client.close(), 5000);
 * await connecting;
 */
export class GeoClient {
  private readonly events = new ClientEvents();
  /** Aborted by `close()`: every part reads it as "the client is closed". */
  private readonly lifetime = new AbortController();
  private readonly counter = new ConsistencyCounter();
  private readonly dialer: Dialer;
  private readonly rooms: RoomTracker;
  private readonly outbox: Outbox;
  private readonly tokens: TokenRefresher;
  private readonly reports: ConsistencyReports;
  /** The `connect()` under way or done. */
  private connecting: Promise<this> | undefined;
  /** The state of the connection. */
  state: ConnectionState = 'connecting';
  /** Round trip of the last `geo.ping` on the live connection, in ms. */
  rttMs: number | undefined;
  /** The session id the server gave (keep it to resume after a reload). */
  sessionId: string | undefined;
  /** The authenticated identity the server stamps as `sender`. */
  sender: string | undefined;

  /**
   * A client that is not connected yet: call {@link GeoClient.connect | connect()}. The
   * options are checked here: what cannot work (no or a malformed `regions` entry or
   * `directoryUrl`, no WebSocket class) throws a `GeoClientError` with code
   * `INVALID_OPTIONS`.
   */
  constructor(options: GeoClientOptions) {
    const checked = checkOptions(options);
    const { signal } = this.lifetime;
    this.dialer = new Dialer(
      options,
      checked,
      {
        sessionId: () => this.sessionId,
        ranked: () => this.rooms.listenForPageHide(),
        // `connecting` until the first connection opens, `reconnecting` after.
        attempting: () => this.setState(this.state === 'connecting' ? 'connecting' : 'reconnecting'),
        welcomed: (welcome, region) => {
          this.sender = welcome.sender;
          this.sessionId = welcome.session_id ?? this.sessionId;
          this.setState('open');
          this.events.emit('region', { region: welcome.region, rttMs: region.rttMs });
          this.rooms.restore(welcome);
          this.tokens.schedule(welcome.expires_at);
          this.reports.start(welcome.report_ms);
          this.rooms.rejoinAll();
        },
        frame: (frame) => this.route(frame),
        draining: (frame) => this.routeDraining(frame),
        settled: () => this.rooms.allJoined(),
        rtt: (ms) => (this.rttMs = ms),
        lost: () => {
          this.sender = undefined;
          this.reports.stop();
          this.rooms.connectionLost();
          this.outbox.connectionLost();
        },
        retrying: (reconnect) => {
          this.setState('reconnecting');
          this.events.emit('reconnect', reconnect);
        },
        error: (error) => this.events.emit('error', error),
        stop: (reason) => this.shutdown(reason),
      },
      signal,
    );
    this.tokens = new TokenRefresher(options, this.dialer, this.events.emit, signal);
    this.reports = new ConsistencyReports(this.counter, this.dialer);
    this.rooms = new RoomTracker(
      options,
      this.dialer,
      this.events,
      this.counter,
      { send: (room) => this.outbox.pump(room), drop: (room, error) => this.outbox.drop(room, error) },
      () => ({ sessionId: this.sessionId, sender: this.sender }),
    );
    this.sessionId = options.sessionId ?? this.rooms.savedSessionId;
    this.outbox = new Outbox(options, checked.codec, this.dialer, this.rooms);
  }

  /**
   * Finds the nearest region, connects, and resolves once the first connection is open.
   * Rejects with a `GeoClientError`: `INVALID_OPTIONS` at once, `UNAUTHORIZED` or
   * `FORBIDDEN` as soon as a region refuses the token, `TIMEOUT` after `connectTimeoutMs`;
   * the client is then closed. To be able to give up earlier, use
   * `new GeoClient(options).connect()` and `close()`.
   */
  static async connect(options: GeoClientOptions): Promise<GeoClient> {
    return new GeoClient(options).connect();
  }

  /**
   * Connects (see the static {@link GeoClient.connect}); resolves with this client once the
   * first connection is open. Calling it again returns the same promise. `close()` before
   * then rejects it with `CLOSED`, and nothing of the client is left running.
   */
  connect(): Promise<this> {
    this.connecting ??= this.dialer.connect().then(() => this);
    return this.connecting;
  }

  /** The region connected to now. */
  get region(): string | undefined {
    return this.dialer.region;
  }

  /**
   * Room-log events delivered, and the duplicates, regressions and gaps seen, since the
   * client was created (a copy; see the `anomaly` event and docs/CLIENT.md, "Consistency").
   */
  get consistency(): ConsistencyCounts {
    return this.counter.snapshot;
  }

  /** Regions in failover order, with their measured RTT. */
  get rankedRegions(): readonly RankedRegion[] {
    return this.dialer.rankedRegions;
  }

  /** Calls `listener` on every `event` (see {@link GeoClientEvents}); returns a function that removes it. */
  on<K extends keyof GeoClientEvents>(event: K, listener: (value: GeoClientEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Joins a room and calls `handler` with its events in `seq` order, each once, across
   * reconnects and region moves. Resolves with the server's `geo.joined` answer.
   * `since`/`epoch` resume from a position stored elsewhere (`since: 0`: all retained history);
   * a `since` without its `epoch` is replayed from but answered `recovered: false` (a `gap`).
   */
  join(room: string, handler: RoomHandler, position: { since?: number; epoch?: string } = {}): Promise<JoinedFrame> {
    if (this.closed) return Promise.reject(new GeoClientError('CLOSED', 'the client was closed'));
    return this.rooms.join(room, handler, position);
  }

  /** Leaves a room; a join still waiting for its answer and the room's unacknowledged publishes are rejected (`LEFT`). */
  leave(room: string): void {
    this.rooms.leave(room);
  }

  /**
   * Publishes an event to a joined room. Resolves with the ack once the room log stored
   * it; until then it stays in the room's outbox and is resent, with the same `event_id`
   * and in `publish()` order, after retryable errors and reconnects, so it is stored
   * exactly once and after this client's earlier publishes to the room. Rejects at once,
   * without sending, what the server could never accept (a payload with no JSON form, too
   * deep, too large); rejects when the server refuses it for good, after
   * `maxInternalRetries` `INTERNAL` answers, or on `leave()`/`close()`.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- public API: `publish<Message>(…)` checks the payload against the app's type; dropping T would break callers that pass it
  publish<T = unknown>(room: string, event: string, data: T, eventId: string = newEventId()): Promise<AckFrame> {
    if (this.closed) return Promise.reject(new GeoClientError('CLOSED', 'the client was closed'));
    if (!this.rooms.has(room)) return Promise.reject(new GeoClientError('NOT_JOINED', `join room "${room}" before publishing to it`));
    return this.outbox.publish(room, event, data, eventId);
  }

  /** Publishes waiting for their ack (sent or queued behind an earlier one). */
  get unacknowledged(): number {
    return this.outbox.size;
  }

  /** Moves to another region now (resuming every room there): the connection closes with {@link GeoClientCloseCode.MOVING}. */
  moveTo(regionName: string): void {
    this.dialer.moveTo(regionName);
  }

  /**
   * Closes for good (close code 1000): a `connect()` still under way and every join and
   * publish still waiting are rejected (`CLOSED`), and nothing of the client is left
   * running (timers, probes, a directory fetch or handshake check under way), so a Node
   * process can exit.
   */
  close(): void {
    this.shutdown(new GeoClientError('CLOSED', 'the client was closed'));
  }

  private get closed(): boolean {
    return this.lifetime.signal.aborted;
  }

  /**
   * Stops for good: each part clears its own timers; `connect()` (if under way) and
   * everything waiting reject with `reason`, `connect()` last.
   */
  private shutdown(reason: GeoClientError): void {
    if (this.closed) return;
    this.reports.close(); // what happened since the last report, while the socket is open
    this.lifetime.abort(reason);
    this.tokens.stop();
    this.rooms.flushPositions(); // with the sender still known
    this.dialer.stop();
    this.sender = undefined;
    this.setState('closed');
    this.rooms.close(reason);
    this.outbox.close(reason);
    this.dialer.failConnect(reason);
  }

  /** The frames the dialer does not handle itself, to the part they concern. */
  private route(frame: Frame): void {
    switch (frame.event) {
      case GeoFrame.JOINED:
        return this.rooms.joined(frame.data as JoinedFrame);
      case GeoFrame.ACK:
        return this.outbox.acked(frame.data as AckFrame);
      case GeoFrame.ERROR: {
        const error = frame.data as ErrorFrame;
        if (error.event_id !== undefined) return this.outbox.refused(error.event_id, error);
        if (!this.rooms.refused(error)) this.events.emit('error', error);
        return;
      }
      case GeoFrame.AUTHED:
        return this.tokens.schedule((frame.data as AuthedFrame).expires_at);
      case GeoFrame.LEFT:
        return this.rooms.left(frame.data as LeftFrame);
      default:
        if (frame.event.startsWith('geo.')) return;
        this.rooms.event(frame.data as GeoEnvelope);
    }
  }

  /**
   * A frame of a drained region's connection after the next one took over: acks of
   * publishes sent on it (the first answer resolves a publish; the resend's is ignored),
   * and the events of rooms not joined on the new connection yet (global log and ephemeral:
   * a room's seq positions drop what both connections deliver; a regional log belongs to
   * the region it was joined in, and that region's is left with it).
   */
  private routeDraining(frame: Frame): void {
    if (frame.event === GeoFrame.ACK) return this.outbox.acked(frame.data as AckFrame);
    if (frame.event.startsWith('geo.')) return;
    const envelope = frame.data as GeoEnvelope;
    if (envelope.scope !== 'regional' && !this.rooms.isJoined(envelope.room_id)) this.rooms.event(envelope);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.events.emit('state', state);
  }
}
