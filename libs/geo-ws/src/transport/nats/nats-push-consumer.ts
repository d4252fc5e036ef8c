import type { Logger } from '@nestjs/common';
import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { NatsClients } from './load-nats.js';
import type { NatsEpochs, StreamHead } from './nats-epochs.js';

/** The server sends a heartbeat after this long without a message; two missed mean the consumer is gone. */
export const HEARTBEAT_MS = 2000;
/** A consumer silent for this long (no message, no heartbeat) is replaced (see {@link NatsPushConsumer.lastSign}). */
export const SILENT_MS = 2 * HEARTBEAT_MS + 500;
/** Longest pause between two attempts to create a consumer again. */
const MAX_BACKOFF_MS = 2000;
/** The server removes a consumer nobody listens to after this long (a safety net: consumers are deleted when dropped). */
const INACTIVE_THRESHOLD_MS = 60_000;

/** What a push consumer reads and where it hands the messages. */
export interface PushConsumerSpec {
  stream: string;
  /** One room's subject, or a whole stream's (`geows.<ns>.g.*`). */
  filter: string;
  /** The stream's creation time when the reader started: a consumer on another incarnation delivers nothing. */
  incarnation: string;
  /** For logs: `room "lobby"`, `stream GEOWS_CHAT`. */
  what: string;
  clients: () => NatsClients;
  epochs: NatsEpochs;
  logger: Logger;
  /** One stored message at stream sequence `seq`, in order; false when the reader is over. */
  onMessage(message: Msg, seq: number): boolean;
  /**
   * Whether retention may have removed, before a consumer starting at stream sequence
   * `from` was created, a message the reader had still to deliver (a consumer skips them
   * without a word). Asked only when {@link mayHaveRemovedFrom} says the stream lost some
   * at or after `from`. True ends the reader (`onFailed`).
   */
  lostFrom(from: number, stream: StreamHead): Promise<boolean>;
  /**
   * The reader ended without being stopped, for `reason`: the stream was deleted and created
   * again (nothing of the new stream was delivered), retention removed messages it had not
   * delivered yet, or NATS stayed silent too long (see {@link NatsPushConsumer.giveUp}).
   */
  onFailed(reason: string): void;
}

/**
 * A stream read in order from a sequence on, through a JetStream push consumer: the
 * server sends each stored message as it arrives, with no pull request to lose. (Pull
 * consumers read across a gateway on nats-server 2.9.10 now and then lose a pull request:
 * the consumer then sends nothing, not even a heartbeat, and its reader stalls until the
 * heartbeat check gives up on it, 4 to 6 s; seen in the lab's steady runs and reproduced
 * with plain ordered pull consumers on a supercluster. Push consumers did not stall.)
 *
 * Ordered by hand, like the client's ordered consumers: ack none, flow control answered,
 * a message whose delivery sequence skips one (or a heartbeat saying more were sent than
 * arrived) means something was lost on the way, and the reader gets a new consumer from
 * the next undelivered stream sequence. So does any failure: a deleted consumer, a dead
 * server (no heartbeat: see {@link lastSign}, checked by one timer for every consumer of
 * the transport, not one per consumer), a reconnect. Each new consumer is checked, before
 * any of its messages is handed over, to read the stream incarnation the reader started
 * on, and to start where nothing the reader had still to deliver was removed by retention
 * meanwhile (an outage longer than `maxAgeMs`, or more than `maxEvents` events of a room):
 * a consumer starts at the first message still stored and says nothing of the others.
 */
export class NatsPushConsumer {
  /** When the current consumer last showed life (a message, a heartbeat, flow control), or was created. */
  lastSign = Date.now();
  /**
   * When NATS last told this reader all is well: an event in order, or a heartbeat that
   * counts no more messages than arrived (a created consumer that stays silent, or one
   * whose heartbeats speak of loss, does not count).
   */
  lastHeard = Date.now();
  /** Why the last attempt to create a consumer failed, for the reason of {@link giveUp}. */
  private lastFailure: string | undefined;
  /** The stream sequence to read from next. */
  private next: number;
  private stopped = false;
  /** Bumped for every consumer created: messages of an earlier one are stale. */
  private generation = 0;
  private current: { subscription: NatsSubscription; name?: string } | undefined;
  /** Delivery sequence of the last message taken from the current consumer. */
  private delivered = 0;
  /** Messages of the current consumer held until its stream's incarnation is checked. */
  private held: { message: Msg; seq: number }[] | undefined;
  private reopening = false;

  constructor(
    private readonly spec: PushConsumerSpec,
    from: number,
  ) {
    this.next = from;
  }

  /** The last stream sequence read (messages after it are still to come). */
  get position(): number {
    return this.next - 1;
  }

  /** Creates the first consumer; a failure is the caller's. */
  start(): Promise<void> {
    return this.open();
  }

  /** Drops the current consumer and reads on from the next sequence with a new one (false: already doing so, or stopped). */
  renew(): boolean {
    if (this.stopped || this.reopening) return false;
    this.reopening = true;
    this.drop();
    void this.reopen();
    return true;
  }

  /** Ends the reader that NATS left silent too long (the owner decides how long) and tells the owner why. */
  giveUp(): void {
    if (this.stopped) return;
    this.stop();
    const last = this.lastFailure ? ` (last attempt: ${this.lastFailure})` : '';
    this.spec.onFailed(`no event or sound heartbeat from NATS for ${Math.round((Date.now() - this.lastHeard) / 1000)} s${last}`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.drop();
  }

  private async open(): Promise<void> {
    const { nats, nc, jsm } = this.spec.clients();
    const generation = ++this.generation;
    const from = this.next;
    const deliver = nats.core.createInbox();
    this.delivered = 0;
    const held: { message: Msg; seq: number }[] = [];
    this.held = held;
    const current: { subscription: NatsSubscription; name?: string } = {
      // Subscribed before the consumer exists, so its first message has somewhere to go.
      subscription: nc.subscribe(deliver, { callback: (error, message) => this.receive(generation, error, message) }),
    };
    this.current = current;
    const name = `geows_${nats.core.nuid.next()}`;
    try {
      await jsm.consumers.add(this.spec.stream, {
        name,
        deliver_subject: deliver,
        filter_subject: this.spec.filter,
        deliver_policy: nats.jetstream.DeliverPolicy.StartSequence,
        opt_start_seq: from,
        ack_policy: nats.jetstream.AckPolicy.None,
        flow_control: true,
        idle_heartbeat: nats.core.nanos(HEARTBEAT_MS),
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nats.core.nanos(INACTIVE_THRESHOLD_MS),
      });
    } catch (error) {
      current.subscription.unsubscribe();
      throw error;
    }
    if (!this.isCurrent(generation)) {
      // Dropped while it was being created: delete it too.
      void jsm.consumers.delete(this.spec.stream, name).catch(() => undefined);
      return;
    }
    current.name = name;
    this.lastSign = Date.now();
    this.lastFailure = undefined;
    // A consumer made after the stream was deleted and created again reads the new one, and
    // one made after retention removed what it should have started with skips it: check
    // both (one stream info, read after the consumer was made) before handing anything over.
    const stream = await this.spec.epochs.streamHead(this.spec.stream);
    if (stream.incarnation !== this.spec.incarnation) {
      this.stop();
      this.spec.onFailed('the stream was recreated; its epoch changed');
      return;
    }
    if (mayHaveRemovedFrom(from, stream) && this.isCurrent(generation) && (await this.spec.lostFrom(from, stream))) {
      if (!this.isCurrent(generation)) return;
      this.stop();
      this.spec.onFailed(`retention removed events after stream seq ${from - 1} before they were delivered`);
      return;
    }
    if (!this.isCurrent(generation)) return;
    this.held = undefined;
    for (const { message, seq } of held) if (!this.take(message, seq)) return;
  }

  /** Opens consumers until one works (backing off 100 ms, doubling up to {@link MAX_BACKOFF_MS}) or the reader stops. */
  private async reopen(): Promise<void> {
    for (let failures = 0; !this.stopped; failures++) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures)));
      if (this.isStopped()) break;
      try {
        await this.open();
        break;
      } catch (error) {
        this.drop();
        const reason = error instanceof Error ? error.message : String(error);
        this.lastFailure = reason;
        this.spec.logger.debug(`tail of ${this.spec.what}: ${reason}; resuming after stream seq ${this.next - 1}`);
      }
    }
    this.reopening = false;
  }

  /** Whether the consumer of this generation is still the one read (flags change while a creation is awaited). */
  private isCurrent(generation: number): boolean {
    return generation === this.generation && !this.stopped;
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private receive(generation: number, error: Error | null, message: Msg): void {
    if (!this.isCurrent(generation)) return;
    if (error) return void this.renew(); // the subscription was refused: try again with a new one
    this.lastSign = Date.now();
    // Status messages (heartbeats, flow control) have no payload; stored events always have
    // one (an envelope), so their headers are only parsed by whoever takes them.
    const headers = message.data.length === 0 ? message.headers : undefined;
    if (headers?.code) {
      if (headers.code !== 100) return void this.renew(); // e.g. 409 consumer deleted
      if (message.reply) message.respond(); // flow control: ready for more
      // A heartbeat says how many messages the consumer sent: more than arrived means loss.
      const sent = Number(headers.get('Nats-Last-Consumer') || 0);
      if (sent > this.delivered) return void this.renew();
      this.lastHeard = this.lastSign;
      const stalled = headers.get('Nats-Consumer-Stalled');
      if (stalled) this.spec.clients().nc.publish(stalled);
      return;
    }
    const position = deliveryOf(message.reply);
    if (!position || position.delivered !== this.delivered + 1) return void this.renew();
    this.delivered = position.delivered;
    this.lastHeard = this.lastSign;
    if (this.held) this.held.push({ message, seq: position.seq });
    else this.take(message, position.seq);
  }

  private take(message: Msg, seq: number): boolean {
    this.next = seq + 1;
    if (this.spec.onMessage(message, seq)) return true;
    this.stop();
    return false;
  }

  /** Unsubscribes and deletes the current consumer (the server would after its inactivity threshold). */
  private drop(): void {
    const current = this.current;
    this.current = undefined;
    this.generation++;
    if (!current) return;
    current.subscription.unsubscribe();
    if (!current.name) return;
    try {
      void this.spec
        .clients()
        .jsm.consumers.delete(this.spec.stream, current.name)
        .catch(() => undefined);
    } catch {
      // Not connected: the server drops it once nobody listens.
    }
  }
}

/**
 * Whether the stream may have lost a message at stream sequence `from` or later, as a
 * stream info read since says: one below its first sequence was removed by age, or more
 * than `maxPerSubject` messages were stored from `from` on (only then can a per-room trim
 * have removed one of them). No further request when it says no, which is the rule.
 */
export function mayHaveRemovedFrom(from: number, stream: StreamHead): boolean {
  return from < stream.firstSeq || (stream.maxPerSubject > 0 && stream.lastSeq - from + 1 > stream.maxPerSubject);
}

/**
 * Stream and delivery sequence from a JetStream message's reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.<ts>.<pending>`,
 * or with `<domain>.<account hash>.` after `$JS.ACK.` and a token at the end (2.10+).
 */
function deliveryOf(reply: string | undefined): { seq: number; delivered: number } | undefined {
  if (!reply?.startsWith('$JS.ACK.')) return undefined;
  const tokens = reply.split('.');
  const at = tokens.length === 9 ? 5 : tokens.length >= 11 ? 7 : -1;
  if (at < 0) return undefined;
  return { seq: Number(tokens[at]), delivered: Number(tokens[at + 1]) };
}
