import type { ClientConnection } from '../client-connection.js';
import type { GeoCodec } from '../codec.js';
import { backoffDelay } from '../dialer/backoff.js';
import { GeoClientError } from '../errors.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { AckFrame, ErrorFrame } from '../protocol.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME_BYTES, encodePublish, type PublishLimits } from './publish-frame.js';

/** What the outbox needs of the room tracker. */
export interface OutboxRooms {
  /** The room is joined on the current connection: its publishes may be sent. */
  isJoined(room: string): boolean;
  /** The server answered `NOT_JOINED` (it dropped the room): join it again; its queue is sent once it is joined. */
  rejoin(room: string): void;
}

interface PendingPublish {
  /** Position among the publishes of its room (`publish()` order). */
  ordinal: number;
  eventId: string;
  room: string;
  /** The frame, encoded once at `publish()`: every attempt sends the same bytes. */
  wire: string | Uint8Array;
  resolve(ack: AckFrame): void;
  reject(error: Error): void;
  /** Sent on the current connection since the last (re)start of its queue, and not answered. */
  sent: boolean;
  /**
   * An attempt failed (retryable error, or the connection was lost while it was sent).
   * While any publish of a queue has failed, the queue sends one publish at a time, so
   * nothing sent after the failure can be stored before it.
   */
  failed: boolean;
  /** Answers that count towards a bound: `INTERNAL`, `NOT_JOINED`. */
  internalFailures: number;
  notJoinedFailures: number;
}

/**
 * One room's unacknowledged publishes, in `publish()` order, with one retry schedule.
 * The sent ones are always a prefix of `items`: a failure unsends them all and the queue
 * starts again from its oldest publish after one backoff delay.
 */
interface PublishQueue {
  items: PendingPublish[];
  /** Set while the queue waits to start again after a retryable failure. */
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Retryable failures since the last ack: the backoff attempt. */
  failures: number;
  /** The ordinal of the next publish. */
  next: number;
}

/** `NOT_JOINED` answers to one publish (each followed by a rejoin) before it is rejected. */
const MAX_NOT_JOINED = 3;

/**
 * The client's unacknowledged publishes: one queue per room, sent in `publish()` order
 * within `maxInFlight` of the oldest unacknowledged one, resent with the same bytes (the
 * same `event_id`) after retryable errors and lost connections until the room log stores
 * them, so each is stored exactly once and after this client's earlier publishes to the
 * room. It owns the queues' retry timers.
 */
export class Outbox {
  /** Unacknowledged publishes by `event_id` (acks and errors name only the event_id). */
  private readonly pending = new Map<string, PendingPublish>();
  /** The same publishes, per room, in order. */
  private readonly queues = new Map<string, PublishQueue>();
  private readonly limits: PublishLimits;

  constructor(
    /** `maxInFlight`, `maxInternalRetries` and `backoff` are read when used, as the client always has. */
    private readonly options: GeoClientOptions,
    private readonly codec: GeoCodec,
    private readonly connection: ClientConnection,
    private readonly rooms: OutboxRooms,
  ) {
    this.limits = { maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH };
  }

  /** Publishes waiting for their ack (sent or queued behind an earlier one). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Queues a publish to a room the client is in and sends it when its turn comes. Rejects at
   * once, without queueing, an `event_id` still waiting for its ack and what the server
   * could never accept (see {@link encodePublish}).
   */
  publish(room: string, event: string, data: unknown, eventId: string): Promise<AckFrame> {
    if (this.pending.has(eventId))
      return Promise.reject(new GeoClientError('INVALID_ENVELOPE', `event_id ${eventId} is already waiting for its ack; nothing was sent`));
    let wire: string | Uint8Array;
    try {
      wire = encodePublish(event, eventId, room, data, this.limits, this.codec);
    } catch (error) {
      return Promise.reject(error instanceof GeoClientError ? error : new GeoClientError('MALFORMED_FRAME', String(error)));
    }
    return new Promise<AckFrame>((resolve, reject) => {
      const queue = this.queueOf(room);
      const pending: PendingPublish = {
        ordinal: queue.next++,
        eventId,
        room,
        wire,
        resolve,
        reject,
        sent: false,
        failed: false,
        internalFailures: 0,
        notJoinedFailures: 0,
      };
      this.pending.set(eventId, pending);
      queue.items.push(pending);
      this.pump(room);
    });
  }

  /** `geo.ack`: stored. */
  acked(ack: AckFrame): void {
    const pending = this.pending.get(ack.event_id);
    if (!pending) return;
    const queue = this.queues.get(pending.room);
    this.remove(pending);
    if (queue) queue.failures = 0;
    pending.resolve(ack);
    this.pump(pending.room);
  }

  /**
   * A `geo.error` naming a publish. Retryable: the whole queue of its room stops and starts
   * again from its oldest publish after one backoff delay (the server stores an `event_id`
   * once, so resending later publishes that it stored meanwhile costs nothing and keeps
   * them in their place). Refused for good: only this publish is rejected; the queue goes
   * on. An error for a publish no longer waiting is a late answer to an earlier attempt.
   */
  refused(eventId: string, error: ErrorFrame): void {
    const pending = this.pending.get(eventId);
    if (!pending) return;
    const refused = (): void => {
      this.remove(pending);
      pending.reject(new GeoClientError(error.code, error.message));
      this.pump(pending.room);
    };
    const queue = this.queues.get(pending.room)!;
    switch (error.code) {
      case 'UNAVAILABLE':
      case 'RATE_LIMITED':
        pending.failed = true;
        return this.retryLater(queue, pending.room);
      case 'INTERNAL':
        // Unexpected on the server: maybe transient, maybe this payload every time.
        if (++pending.internalFailures > (this.options.maxInternalRetries ?? 3)) return refused();
        pending.failed = true;
        return this.retryLater(queue, pending.room);
      case 'NOT_JOINED':
        // The server dropped the room (e.g. its log was reset): join again, then resend.
        if (++pending.notJoinedFailures > MAX_NOT_JOINED) return refused();
        pending.failed = true;
        this.unsend(queue);
        return this.rooms.rejoin(pending.room);
      default:
        return refused();
    }
  }

  /**
   * Sends a room's publishes in order, those within `maxInFlight` of its oldest
   * unacknowledged one (the window never slides past an unacknowledged publish; it is 1
   * while a publish of the queue has failed), when the connection is open, the room
   * joined, and the queue not waiting to retry.
   */
  pump(room: string): void {
    const queue = this.queues.get(room);
    if (!queue || queue.items.length === 0 || !this.connection.isOpen || !this.rooms.isJoined(room) || queue.retryTimer !== undefined)
      return;
    const { maxInFlight = 1 } = this.options;
    let window = maxInFlight >= 1 ? Math.floor(maxInFlight) : 1;
    if (window > 1 && queue.items.some((item) => item.failed)) window = 1;
    const end = queue.items[0].ordinal + window;
    for (const item of queue.items) {
      if (item.ordinal >= end) return;
      if (!item.sent) {
        item.sent = true;
        this.connection.sendEncoded(item.wire);
      }
    }
  }

  /**
   * The connection ended: whatever was sent on it is unanswered, and counts as failed.
   * Every queue starts again from its oldest publish once its room is joined on the next
   * connection.
   */
  connectionLost(): void {
    for (const queue of this.queues.values()) this.unsend(queue, true);
  }

  /** Rejects every publish of a room (left, or its join refused) with `error`. */
  drop(room: string, error: GeoClientError): void {
    const queue = this.queues.get(room);
    if (!queue) return;
    this.queues.delete(room);
    clearTimeout(queue.retryTimer);
    for (const pending of queue.items) {
      this.pending.delete(pending.eventId);
      pending.reject(error);
    }
  }

  /** `close()`: every publish rejects with `reason`; no retry timer is left. */
  close(reason: GeoClientError): void {
    for (const room of [...this.queues.keys()]) this.drop(room, reason);
  }

  /** One retry schedule per queue: failures while it already waits do not add timers. */
  private retryLater(queue: PublishQueue, room: string): void {
    this.unsend(queue);
    if (queue.retryTimer !== undefined) return;
    queue.retryTimer = setTimeout(
      () => {
        queue.retryTimer = undefined;
        this.pump(room);
      },
      backoffDelay(queue.failures++, this.options.backoff),
    );
  }

  /**
   * Marks a queue's publishes unsent and cancels its retry timer; with `lost`, the ones
   * that were sent count as failed (their connection is gone, their outcome unknown).
   */
  private unsend(queue: PublishQueue, lost = false): void {
    for (const item of queue.items) {
      if (lost && item.sent) item.failed = true;
      item.sent = false;
    }
    clearTimeout(queue.retryTimer);
    queue.retryTimer = undefined;
  }

  private queueOf(room: string): PublishQueue {
    let queue = this.queues.get(room);
    if (!queue) {
      queue = { items: [], failures: 0, next: 0 };
      this.queues.set(room, queue);
    }
    return queue;
  }

  private remove(pending: PendingPublish): void {
    this.pending.delete(pending.eventId);
    const queue = this.queues.get(pending.room);
    if (!queue) return;
    const index = queue.items.indexOf(pending);
    if (index !== -1) queue.items.splice(index, 1);
    if (queue.items.length === 0) {
      clearTimeout(queue.retryTimer);
      this.queues.delete(pending.room);
    }
  }
}
