import { Logger } from '@nestjs/common';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { Subscription } from '../geo-transport.interface.js';
import type { LogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, joinEpoch, ofEpoch, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsLogReader } from './nats-log.reader.js';
import type { NatsNames } from './nats-names.js';

/** Longest pause between two attempts to open a tail's consumer again. */
const MAX_BACKOFF_MS = 2000;
/** A pull expires after this long; a healthy idle consumer then pulls again (a `next` status). */
const PULL_EXPIRES_MS = 4000;
/**
 * A consumer that has shown no message and no heartbeat for this long is stuck: after a
 * gateway cut it may wait forever for a pull answer lost in the cut, or keep failing to
 * recreate itself (seen in the lab's partition runs). It is replaced from the next sequence.
 */
const SILENT_MS = 4 * PULL_EXPIRES_MS;

/**
 * Live tails: one ordered consumer per (instance, log), filtered on the log's subject,
 * started after the position the caller gave. Each tail heals itself (a new consumer
 * from the next undelivered sequence) and fails, rather than deliver, when its log was
 * reset or its stream created again.
 */
export class NatsTails {
  private readonly logger = new Logger(NatsTails.name);
  /** Open tails by log key (a log reset elsewhere fails the tails of its key). */
  private readonly tails = new Map<string, Set<NatsTail>>();
  /** One check for every tail of this transport, not a timer per tail. */
  private readonly watchdog = setInterval(() => this.renewSilent(), PULL_EXPIRES_MS).unref();

  constructor(
    private readonly names: NatsNames,
    private readonly epochs: NatsEpochs,
    private readonly reads: NatsLogReader,
    private readonly clients: () => NatsClients,
  ) {}

  /**
   * Opens a tail. The first consumer is created before this resolves, so a tail that
   * cannot start fails its caller; later failures (broker restarts, a lost consumer host,
   * leader elections) are healed by the tail itself.
   */
  async open(
    log: LogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<Subscription> {
    const { js, nats } = this.clients();
    const key = this.names.logKey(log);
    const stream = this.names.stream(log);
    const logEpoch = await this.epochs.logEpoch(log);
    const incarnation = await this.epochs.incarnationOf(stream, true);
    const first = await this.reads.firstPosition(log);
    if (first && afterSeq + 1 < first.seq && !first.first) {
      // Retryable: the caller reads again from the first retained event (a join says `recovered: false`).
      throw new GeoTransportUnavailableError(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    const tail = new NatsTail(
      {
        log,
        key,
        stream,
        subject: this.names.subject(log),
        epoch: joinEpoch(logEpoch, incarnation),
        incarnation,
        afterSeq,
        js,
        epochs: this.epochs,
        logger: this.logger,
        onEvent,
        onError,
      },
      () => this.forget(tail),
    );
    await tail.start().catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    const forKey = this.tails.get(key) ?? new Set<NatsTail>();
    forKey.add(tail);
    this.tails.set(key, forKey);
    return {
      close: () => {
        tail.stop();
        return Promise.resolve();
      },
    };
  }

  /** After a reconnect: the server may not host the old consumers, so every tail starts a fresh one. */
  renewAll(): void {
    for (const tails of this.tails.values()) for (const tail of tails) tail.renew();
  }

  /** A log got a new epoch (its `deleteLog` ran somewhere): tails of another epoch fail. */
  rotated(key: string, logEpoch: string): void {
    for (const tail of [...(this.tails.get(key) ?? [])]) {
      if (!tail.epoch.startsWith(`${logEpoch}.`)) tail.fail('the room log was reset; its epoch changed');
    }
  }

  closeAll(): void {
    clearInterval(this.watchdog);
    for (const tails of [...this.tails.values()]) for (const tail of [...tails]) tail.stop();
    this.tails.clear();
  }

  private renewSilent(): void {
    const now = Date.now();
    for (const tails of this.tails.values()) {
      for (const tail of tails) {
        if (now - tail.lastSign < SILENT_MS) continue;
        this.logger.debug(`tail of room "${tail.room}": no message and no heartbeat for ${SILENT_MS} ms; a new consumer`);
        tail.renew();
      }
    }
  }

  private forget(tail: NatsTail): void {
    const tails = this.tails.get(tail.key);
    tails?.delete(tail);
    if (tails?.size === 0) this.tails.delete(tail.key);
  }
}

/** What one tail follows and where it delivers. */
interface TailSpec {
  log: LogRef;
  key: string;
  stream: string;
  subject: string;
  /** The full epoch the tail delivers events of. */
  epoch: string;
  /** The stream's creation time when the tail started. */
  incarnation: string;
  afterSeq: number;
  js: JetStreamClient;
  epochs: NatsEpochs;
  logger: Logger;
  onEvent(event: GeoLoggedEnvelope): void;
  onError?(error: Error): void;
}

/** One live tail: an ordered consumer from the next undelivered sequence, opened again after any failure. */
class NatsTail {
  readonly key: string;
  readonly epoch: string;
  /** When the current consumer last showed life (a message or a heartbeat); see {@link SILENT_MS}. */
  lastSign = Date.now();
  private delivered: number;
  /** The stream sequence to resume from after any failure. */
  private next: number;
  private stopped = false;
  private current: ConsumerMessages | undefined;
  /** The consumer whose stream was last checked to be this tail's incarnation. */
  private verified: string | undefined;

  constructor(
    private readonly spec: TailSpec,
    private readonly onStop: () => void,
  ) {
    this.key = spec.key;
    this.epoch = spec.epoch;
    this.delivered = spec.afterSeq;
    this.next = spec.afterSeq + 1;
  }

  /** Creates the first consumer (its failure is the caller's), then follows the log. */
  async start(): Promise<void> {
    this.current = await this.open();
    void this.run();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    void this.current?.close().catch(() => undefined);
    this.onStop();
  }

  get room(): string {
    return this.spec.log.room;
  }

  /** Drops the current consumer; the loop opens a new one where the tail left off. */
  renew(): void {
    this.lastSign = Date.now();
    void this.current?.close().catch(() => undefined);
  }

  /** Ends the tail and tells its owner why (once; not after it was closed). Its members join again. */
  fail(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.spec.onError?.(new GeoTransportUnavailableError(reason));
  }

  private async open(): Promise<ConsumerMessages> {
    const consumer = await this.spec.js.consumers.get(this.spec.stream, { filter_subjects: this.spec.subject, opt_start_seq: this.next });
    // Short pulls: missed heartbeats are noticed within seconds.
    const messages = await consumer.consume({ max_messages: 256, expires: PULL_EXPIRES_MS });
    this.lastSign = Date.now();
    void followStatus(messages, () => (this.lastSign = Date.now()));
    return messages;
  }

  private async run(): Promise<void> {
    for (let failures = 0; !this.stopped; failures++) {
      try {
        const messages = this.current ?? (await this.reopen());
        if (!messages) return; // the stream was created again: the tail failed
        for await (const message of messages) {
          failures = 0;
          if (!(await this.take(message))) return;
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        this.spec.logger.debug(`tail of room "${this.spec.log.room}": ${reason}; resuming after stream seq ${this.next - 1}`);
      }
      this.current = undefined;
      await this.pause(failures);
    }
  }

  /** A new consumer, unless the stream was deleted and created again meanwhile (it restarts its sequences). */
  private async reopen(): Promise<ConsumerMessages | undefined> {
    if (!(await this.sameIncarnation())) return undefined;
    this.current = await this.open();
    return this.current;
  }

  /** Delivers one message unless the tail is over; false when it is. */
  private async take(message: JsMsg): Promise<boolean> {
    if (this.stopped) return false;
    if (message.info.consumer !== this.verified) {
      // A new consumer (ours, or the ordered consumer's own reset) may already read a
      // stream that was deleted and created again: check before delivering from it.
      if (!(await this.sameIncarnation())) return false;
      this.verified = message.info.consumer;
    }
    return this.deliver(message);
  }

  private deliver(message: JsMsg): boolean {
    if (this.stopped) return false; // closed while the incarnation was checked
    this.lastSign = Date.now();
    this.next = message.seq + 1;
    if (message.seq <= this.delivered) return true;
    if (!ofEpoch(message.headers?.get(EPOCH_HEADER), this.epoch)) {
      this.fail(`log of room "${this.spec.log.room}" was reset; its epoch changed`);
      return false;
    }
    this.delivered = message.seq;
    this.spec.onEvent({ ...message.json<GeoEnvelopeDraft>(), seq: message.seq });
    return true;
  }

  /** Whether the stream is still the one the tail started on; fails the tail when not. */
  private async sameIncarnation(): Promise<boolean> {
    if ((await this.spec.epochs.incarnationOf(this.spec.stream, true)) === this.spec.incarnation) return true;
    this.fail(`the stream of room "${this.spec.log.room}" was recreated; its epoch changed`);
    return false;
  }

  /** Backs off before the next consumer: 100 ms, doubling up to {@link MAX_BACKOFF_MS}. */
  private async pause(failures: number): Promise<void> {
    if (this.stopped) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures)));
  }
}

/**
 * An ordered consumer lives on one server. When that server dies the client keeps
 * asking the dead consumer for its state; after two missed heartbeats the tail drops it
 * and its loop creates a new consumer from the next undelivered sequence. A heartbeat
 * from the server is the watchdog's sign of life.
 */
async function followStatus(messages: ConsumerMessages, alive: () => void): Promise<void> {
  for await (const status of messages.status()) {
    // Only the server sends heartbeats (an idle pull gets one every 2 s). Pulls, resets and
    // debug notes are the client's own, and a stuck consumer keeps making them.
    if (status.type === 'heartbeat') alive();
    else if (status.type === 'heartbeats_missed' && status.count >= 2) {
      await messages.close().catch(() => undefined);
      return;
    }
  }
}
