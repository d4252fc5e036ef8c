import type * as Jetstream from '@nats-io/jetstream';
import type * as TransportNode from '@nats-io/transport-node';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';

/** How often unanswered publishes are checked against their deadline (a timeout fires at most this late). */
const CHECK_EVERY_MS = 100;

/** What the stream answered: where the event is stored, and whether it was there already (G1). */
export interface StreamAck {
  seq: number;
  duplicate: boolean;
}

interface PendingAck {
  resolve(ack: StreamAck): void;
  reject(error: Error): void;
  deadline: number;
}

/** A JetStream publish acknowledgement or refusal, as the stream sends it. */
interface AckReply {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code: number; err_code: number; description: string };
}

/**
 * JetStream publishes with their acks matched here instead of by `js.publish`, which
 * makes a request per publish: a request object, its own timer, and Error objects for
 * async stack traces, even when the ack comes back fine (the profile of a region
 * process showed them). Here every publish carries a reply subject on one shared inbox
 * subscription; acks are matched by the reply's last token, and one timer fails the
 * publishes whose ack did not come in time. Many appends can be in flight at once.
 *
 * The message is the one `js.publish` sends (the same headers, `Nats-Msg-Id` included),
 * and the stream acks it only once stored, so dedup (G1) and ack-after-store (G4) are
 * the stream's, as before.
 */
export class NatsPublisher {
  /** Unanswered publishes by reply token; all share one timeout, so insertion order is deadline order. */
  private readonly pending = new Map<string, PendingAck>();
  private readonly inbox: string;
  private readonly subscription: Subscription;
  private readonly checker: NodeJS.Timeout;
  private sent = 0;
  private failure: Error | undefined;

  constructor(
    /** The client modules (loaded on first use, see `loadNats`). */
    private readonly nats: { core: typeof TransportNode; jetstream: typeof Jetstream },
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.inbox = nats.core.createInbox();
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (error, message) => (error ? this.failAll(error) : this.settle(message)),
    });
    this.checker = setInterval(() => this.expire(Date.now()), CHECK_EVERY_MS).unref();
  }

  /** Publishes `payload` to a stream's subject; resolves with the stream's ack once it stored it. */
  publish(subject: string, payload: string, headers: MsgHdrs): Promise<StreamAck> {
    if (this.failure) return Promise.reject(this.failure);
    const token = (this.sent++).toString(36);
    return new Promise<StreamAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      try {
        this.nc.publish(subject, payload, { reply: `${this.inbox}.${token}`, headers });
      } catch (error) {
        this.pending.delete(token);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Fails what is still unanswered and stops listening. */
  close(): void {
    clearInterval(this.checker);
    this.subscription.unsubscribe();
    this.failAll(new GeoTransportUnavailableError('the NATS transport was closed before the publish was acknowledged'));
  }

  private settle(message: Msg): void {
    const token = message.subject.slice(this.inbox.length + 1);
    const waiting = this.pending.get(token);
    if (!waiting) return; // answered after its deadline: already failed as unavailable
    this.pending.delete(token);
    if (message.data.length === 0 && message.headers?.code === 503) {
      waiting.reject(new GeoTransportUnavailableError('NATS: no JetStream server answered the publish (no responders); retry'));
      return;
    }
    let reply: AckReply;
    try {
      reply = message.json<AckReply>();
    } catch (error) {
      waiting.reject(new this.nats.jetstream.JetStreamError('invalid publish ack from JetStream', { cause: error }));
      return;
    }
    if (reply.error) waiting.reject(new this.nats.jetstream.JetStreamApiError(reply.error));
    else if (!reply.stream || typeof reply.seq !== 'number')
      waiting.reject(new this.nats.jetstream.JetStreamError('invalid publish ack from JetStream'));
    else waiting.resolve({ seq: reply.seq, duplicate: reply.duplicate === true });
  }

  private expire(now: number): void {
    for (const [token, waiting] of this.pending) {
      if (waiting.deadline > now) return;
      this.pending.delete(token);
      waiting.reject(
        new GeoTransportUnavailableError(`NATS: no ack from JetStream within ${this.timeoutMs} ms; retry with the same event_id`),
      );
    }
  }

  /** The inbox is gone (closed, or refused by the server): nothing more can be acknowledged. */
  private failAll(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
