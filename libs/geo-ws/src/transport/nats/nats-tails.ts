import { Logger } from '@nestjs/common';
import type { Msg } from '@nats-io/transport-node';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoSubscription } from '../geo-transport.interface.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, ofEpoch, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsLogReader } from './nats-log.reader.js';
import type { NatsLogRef, NatsNames } from './nats-names.js';
import { NatsPushConsumer, SILENT_MS, type PushConsumerSpec } from './nats-push-consumer.js';
import { fromRoomStart } from './nats-homes.js';
import { SEAL_HEADER } from './nats-segments.js';

/** How often every consumer of the transport is checked for silence (one timer, not one per consumer). */
const WATCHDOG_EVERY_MS = 1000;
/** Default of `sharedTailFrom` (see {@link NatsTails}). */
export const DEFAULT_SHARED_TAIL_FROM = 64;
/**
 * Default of `tailGiveUpMs`: long enough for the elections after a gateway heal (up to
 * 21 s of silence measured in the partition e2e), short enough that a region whose
 * JetStream stays unavailable tells its members instead of leaving them waiting.
 */
export const DEFAULT_TAIL_GIVE_UP_MS = 30_000;
/** A shorter `tailGiveUpMs` would fail tails before a replaced consumer had a chance to speak. */
export const MIN_TAIL_GIVE_UP_MS = SILENT_MS + 500;

/**
 * Live tails. A tail delivers one room log's events after a position, in order, none
 * missing or repeated, and fails (rather than deliver) when its log was reset or its
 * stream created again. Its events come from one of two readers:
 * - its own push consumer filtered on the room's subject, while this node tails fewer
 *   than `sharedFrom` rooms of the stream;
 * - from then on, one push consumer for the whole stream (`geows.<ns>.g.*`), whose
 *   messages this node sorts by subject to the rooms it tails and drops for the others
 *   (nats-server 2.9 has no consumers with several filters). It lasts while any room of
 *   the stream is tailed here. A room that joins it after the position the reader has
 *   reached catches up from the log by direct gets first, live messages held meanwhile.
 * See "Many rooms on NATS" in docs/TRANSPORTS.md for the costs that set the threshold.
 */
export class NatsTails {
  private readonly logger = new Logger(NatsTails.name);
  /** Open tails by log key (a log reset elsewhere fails the tails of its key). */
  private readonly tails = new Map<string, Set<RoomTail>>();
  /** Per stream: the tails that read through their own consumer. */
  private readonly own = new Map<string, Set<RoomTail>>();
  /** Per stream: the one reader of the whole stream, once this node tails enough of its rooms. */
  private readonly shared = new Map<string, SharedStreamTail>();
  /** One check of every consumer of this transport for silence. */
  private readonly watchdog = setInterval(() => {
    this.checkSilence();
    void this.checkOrigins();
  }, WATCHDOG_EVERY_MS).unref();
  /** A check of the home streams behind mirrors is under way. */
  private checkingOrigins = false;

  constructor(
    private readonly names: NatsNames,
    private readonly epochs: NatsEpochs,
    private readonly reads: NatsLogReader,
    private readonly clients: () => NatsClients,
    /** Rooms of one stream tailed at once from which the stream is read through one consumer. */
    private readonly sharedFrom: number,
    /** A reader NATS sent nothing for this long fails its tails (their members join again). */
    private readonly giveUpMs: number,
    /** The stream a log's live events are read from: its own, or this region's mirror of its incarnation `incarnation`. */
    private readonly readStream: (log: NatsLogRef, incarnation: string) => string = (log) => names.stream(log),
  ) {}

  /**
   * Opens a tail. Its reader is started (or joined) before this resolves, so a tail that
   * cannot start fails its caller; later failures (broker restarts, a lost consumer host,
   * leader elections) are healed by the reader.
   */
  async open(
    log: NatsLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
    /**
     * Read through the stream's shared reader whatever `sharedFrom` says: for a tail that
     * starts while an event waits for it (a room's first event, just placed). Creating a
     * consumer costs a round trip to the JetStream meta leader, often in another region;
     * joining a shared reader costs a direct get, and only the stream's first one here
     * creates a consumer.
     */
    shared = false,
    /** Called (and the tail stopped) when the tail reaches the seal a move wrote after its segment's last event. */
    onSealed?: () => void,
    /**
     * The tail starts a segment a move just opened (`afterSeq` is its start, from the
     * record), in this epoch: its bounds are not asked of its home stream, in another
     * region. Nothing of it can be gone yet: it began a moment ago, under a new subject.
     */
    segmentStart?: { epoch: string },
  ): Promise<NatsSubscription> {
    const { nats } = this.clients();
    const key = this.names.logKey(log);
    const { epoch, head } = segmentStart
      ? { epoch: segmentStart.epoch, head: { incarnation: log.home!.incarnation, lastSeq: afterSeq } }
      : await this.liveBounds(log, afterSeq);
    const origin = this.names.stream(log);
    const stream = this.readStream(log, head.incarnation);
    // A mirror is a stream of its own: its consumers are checked against its incarnation,
    // and the home stream's is checked apart (see checkOrigins). A reader of it starts
    // from its own end: what the home stream holds beyond that comes later, live.
    const readHead: { incarnation: string; lastSeq: number } = stream === origin ? head : await this.epochs.streamHead(stream);
    const tail = new RoomTail(
      {
        log,
        key,
        stream,
        subject: this.names.subject(log),
        epoch,
        incarnation: readHead.incarnation,
        origin: { stream: origin, incarnation: head.incarnation },
        // Nothing of a homed room is at or before its start: the tail catches up from there.
        afterSeq: fromRoomStart(log, afterSeq),
        onEvent,
        onError,
        onSealed,
      },
      () => this.forget(tail),
    );
    const forKey = this.tails.get(key) ?? new Set<RoomTail>();
    forKey.add(tail);
    this.tails.set(key, forKey);
    try {
      await this.start(tail, readHead.lastSeq, shared);
    } catch (error) {
      tail.stop();
      throw unavailable(nats, error);
    }
    return {
      epoch,
      close: () => {
        tail.stop();
        return Promise.resolve();
      },
    };
  }

  /** The log's epoch and home stream head, refusing a position retention went past. */
  private async liveBounds(log: NatsLogRef, afterSeq: number): Promise<{ epoch: string; head: { incarnation: string; lastSeq: number } }> {
    const bounds = await this.reads.bounds(log, afterSeq, false);
    if (bounds.truncated) {
      // Retryable: the caller reads again from the first retained event (a join says `recovered: false`).
      throw new GeoTransportUnavailableError(`cannot tail room "${log.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    return { epoch: bounds.epoch, head: bounds.stream };
  }

  /** After a reconnect: the server may not host the old consumers, so every reader starts a fresh one. */
  renewAll(): void {
    for (const consumer of this.consumers()) consumer.renew();
  }

  /** A log got a new epoch (its `deleteLog` ran somewhere): tails of another epoch fail. */
  rotated(key: string, logEpoch: string): void {
    this.failOtherEpochs(key, (epoch) => epoch.startsWith(`${logEpoch}.`), 'the room log was reset; its epoch changed');
  }

  /** A homed room started a new generation (taken over, or its home stream lost): tails of an older one fail. */
  regenerated(key: string, incarnation: string): void {
    this.failOtherEpochs(
      key,
      (epoch) => epoch.endsWith(`.${incarnation}`),
      'the room changed home after its home region was lost; its epoch changed',
    );
  }

  private failOtherEpochs(key: string, current: (epoch: string) => boolean, reason: string): void {
    for (const tail of [...(this.tails.get(key) ?? [])]) if (!current(tail.epoch)) tail.fail(reason);
  }

  closeAll(): void {
    clearInterval(this.watchdog);
    for (const tails of [...this.tails.values()]) for (const tail of [...tails]) tail.stop();
    this.tails.clear();
  }

  /** Reads the tail through the stream's shared reader, or its own consumer while the node tails few of the stream's rooms. */
  private async start(tail: RoomTail, streamLastSeq: number, preferShared: boolean): Promise<void> {
    const shared = this.shared.get(tail.stream);
    if (shared) return shared.attach(tail);
    const own = this.own.get(tail.stream) ?? new Set<RoomTail>();
    if (preferShared || own.size + 1 >= this.sharedFrom) return this.share(tail, own, streamLastSeq);
    const consumer = new NatsPushConsumer(
      this.consumerSpec(tail.stream, tail.subject, tail.incarnation, `room "${tail.room}"`, tail, async (from) => {
        // The stream lost messages from `from` on: were any of them this room's?
        return (await this.reads.bounds(tail.log, from - 1, false)).truncated;
      }),
      tail.delivered + 1,
    );
    tail.readFrom(consumer);
    own.add(tail);
    this.own.set(tail.stream, own);
    await consumer.start();
  }

  /**
   * Starts the stream's shared reader at the stream's end and moves every tail of the
   * stream onto it: each catches up from the log to where the reader started.
   */
  private async share(tail: RoomTail, own: Set<RoomTail>, streamLastSeq: number): Promise<void> {
    const shared = new SharedStreamTail(
      (onMessage, onFailed) =>
        new NatsPushConsumer(
          this.consumerSpec(
            tail.stream,
            this.names.streamSubjects(tail.log),
            tail.incarnation,
            `stream ${tail.stream}`,
            { onMessage, onFailed },
            // Messages of any room may be gone: every tail of the reader fails, and its
            // members' joins tell each what it lost (asking room by room would cost a look
            // per room, after an outage, when all of them come back at once).
            () => Promise.resolve(true),
          ),
          streamLastSeq + 1,
        ),
      tail.incarnation,
      this.reads,
      () => {
        if (this.shared.get(tail.stream) === shared) this.shared.delete(tail.stream);
      },
    );
    this.shared.set(tail.stream, shared);
    this.own.delete(tail.stream);
    const moving = [...own];
    try {
      await shared.start();
    } catch (error) {
      shared.stop();
      // They keep their own consumers (they never stopped reading).
      const back = this.own.get(tail.stream) ?? new Set<RoomTail>();
      for (const other of moving) if (!other.closed) back.add(other);
      if (back.size > 0) this.own.set(tail.stream, back);
      throw error;
    }
    for (const other of moving) {
      other.readFrom(undefined); // its own consumer stops; the shared reader covers what it had not delivered yet
      void shared.attach(other).catch((error: unknown) => other.fail(`room "${other.room}": ${(error as Error).message}`));
    }
    await shared.attach(tail);
  }

  private consumerSpec(
    stream: string,
    filter: string,
    incarnation: string,
    what: string,
    reader: { onMessage(message: Msg, seq: number): boolean; onFailed(reason: string): void },
    lostFrom: (from: number) => Promise<boolean>,
  ): PushConsumerSpec {
    return {
      stream,
      filter,
      incarnation,
      what,
      clients: this.clients,
      epochs: this.epochs,
      logger: this.logger,
      onMessage: (message: Msg, seq: number) => reader.onMessage(message, seq),
      lostFrom,
      onFailed: (reason: string) => reader.onFailed(reason),
    };
  }

  private *consumers(): Iterable<NatsPushConsumer> {
    for (const tails of this.own.values()) for (const tail of tails) if (tail.consumer) yield tail.consumer;
    for (const shared of this.shared.values()) yield shared.consumer;
  }

  /** Replaces consumers silent for {@link SILENT_MS}; fails the readers NATS left silent for `giveUpMs`. */
  private checkSilence(): void {
    const now = Date.now();
    // A copy: a reader that gives up fails its tails, which leave the maps walked here.
    for (const consumer of [...this.consumers()]) {
      if (now - consumer.lastHeard >= this.giveUpMs) consumer.giveUp();
      else if (now - consumer.lastSign >= SILENT_MS && consumer.renew()) {
        this.logger.debug(`a tail consumer showed no message and no heartbeat for ${SILENT_MS} ms; a new one`);
      }
    }
  }

  /**
   * Tails that read a mirror do not see their home stream created again (the mirror goes
   * on copying nothing, then, once the new stream passes the old one's last sequence, its
   * events): each home stream behind a mirror tail is asked for its incarnation here, once
   * a second, and the tails of one created again fail (their members join again).
   */
  private async checkOrigins(): Promise<void> {
    if (this.checkingOrigins) return;
    const byOrigin = new Map<string, RoomTail[]>();
    for (const tails of this.tails.values()) {
      for (const tail of tails) {
        if (tail.stream === tail.origin.stream) continue;
        const list = byOrigin.get(tail.origin.stream) ?? [];
        list.push(tail);
        byOrigin.set(tail.origin.stream, list);
      }
    }
    if (byOrigin.size === 0) return;
    this.checkingOrigins = true;
    try {
      await Promise.all(
        [...byOrigin].map(async ([origin, tails]) => {
          const head = await this.epochs.streamHead(origin).catch(() => undefined);
          if (!head) return; // unreachable: the silence checks cover it
          for (const tail of tails)
            if (tail.origin.incarnation !== head.incarnation)
              tail.fail(`the stream of room "${tail.room}" was recreated; its epoch changed`);
        }),
      );
    } finally {
      this.checkingOrigins = false;
    }
  }

  private forget(tail: RoomTail): void {
    const tails = this.tails.get(tail.key);
    tails?.delete(tail);
    if (tails?.size === 0) this.tails.delete(tail.key);
    const own = this.own.get(tail.stream);
    own?.delete(tail);
    if (own?.size === 0) this.own.delete(tail.stream);
  }
}

/** A tail, with the epoch it delivers events of. */
export interface NatsSubscription extends GeoSubscription {
  readonly epoch: string;
}

/** What one tail follows and where it delivers. */
interface TailSpec {
  log: NatsLogRef;
  key: string;
  stream: string;
  subject: string;
  /** The full epoch the tail delivers events of. */
  epoch: string;
  /** The stream's creation time when the tail started. */
  incarnation: string;
  afterSeq: number;
  onEvent(event: GeoLoggedEnvelope): void;
  onError?(error: Error): void;
  onSealed?(): void;
  /** The log's own stream and its incarnation when the tail started (the tail may read a mirror of it). */
  origin: { stream: string; incarnation: string };
}

/** A stored message as a tail takes it: from a consumer (a core message) or a direct get. */
interface TailMessage {
  json(): GeoEnvelopeDraft;
}

/** One live tail: delivers its room's events once each, in order, whichever reader brings them. */
class RoomTail {
  readonly key: string;
  readonly epoch: string;
  readonly stream: string;
  readonly subject: string;
  readonly incarnation: string;
  readonly origin: TailSpec['origin'];
  /** The last stream sequence delivered: nothing at or below it is delivered again. */
  delivered: number;
  /** The tail's own consumer, while it reads through one. */
  consumer: NatsPushConsumer | undefined;
  /** The shared reader it is attached to, if any. */
  shared: SharedStreamTail | undefined;
  /** Live messages held while the tail catches up from the log. */
  private held: { message: Msg; seq: number }[] | undefined;
  private stopped = false;

  constructor(
    private readonly spec: TailSpec,
    private readonly onStop: () => void,
  ) {
    this.key = spec.key;
    this.epoch = spec.epoch;
    this.stream = spec.stream;
    this.subject = spec.subject;
    this.incarnation = spec.incarnation;
    this.origin = spec.origin;
    this.delivered = spec.afterSeq;
  }

  get log(): NatsLogRef {
    return this.spec.log;
  }

  get room(): string {
    return this.spec.log.room;
  }

  /** Reads through this consumer from now on (undefined: none of its own), stopping the one before. */
  readFrom(consumer: NatsPushConsumer | undefined): void {
    this.consumer?.stop();
    this.consumer = consumer;
  }

  onMessage(message: Msg, seq: number): boolean {
    if (this.stopped) return false;
    if (this.held) {
      this.held.push({ message, seq });
      return true;
    }
    const headers = message.headers;
    return this.deliver(seq, headers?.get(EPOCH_HEADER), headers?.has(SEAL_HEADER) ?? false, message);
  }

  onFailed(reason: string): void {
    this.fail(`room "${this.room}": ${reason}`);
  }

  get closed(): boolean {
    return this.stopped;
  }

  /** Holds live messages from now on, until {@link catchUp} delivered the stored ones before them. */
  hold(): void {
    this.held ??= [];
  }

  /**
   * Delivers the log's stored events after `delivered` up to `upTo` by direct gets, then
   * the live messages held since {@link hold} (all after `upTo`). Rejects (and delivers
   * nothing more) when the log cannot be read now.
   */
  async catchUp(upTo: number, reads: NatsLogReader): Promise<void> {
    for (let from = this.delivered + 1; from <= upTo && !this.stopped;) {
      const stored = await reads.next(this.spec.log, from, this.stream);
      if (!stored || stored.seq > upTo) break;
      if (!this.deliver(stored.seq, stored.header.get(EPOCH_HEADER), stored.header.has(SEAL_HEADER), stored)) return;
      from = stored.seq + 1;
    }
    const held = this.held ?? [];
    this.held = undefined;
    for (const { message, seq } of held) if (!this.onMessage(message, seq)) return;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.readFrom(undefined);
    this.shared?.detach(this);
    this.onStop();
  }

  /** Ends the tail and tells its owner why (once; not after it was closed). Its members join again. */
  fail(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.spec.onError?.(new GeoTransportUnavailableError(reason));
  }

  private deliver(seq: number, epochHeader: string | undefined, seal: boolean, message: TailMessage): boolean {
    if (this.stopped) return false;
    if (seq <= this.delivered) return true;
    if (seal) {
      // A move sealed the segment: what follows on this subject is not the room's.
      this.stop();
      this.spec.onSealed?.();
      return false;
    }
    if (!ofEpoch(epochHeader, this.epoch)) {
      this.fail(`log of room "${this.room}" was reset; its epoch changed`);
      return false;
    }
    this.delivered = seq;
    this.spec.onEvent({ ...message.json(), seq });
    return true;
  }
}

/**
 * One reader of a whole stream for every room of it this node tails: messages go to the
 * tails of their subject, others are dropped unparsed. A tail attached behind the
 * reader's position catches up from the log first (see {@link RoomTail.catchUp}).
 */
class SharedStreamTail {
  readonly consumer: NatsPushConsumer;
  private readonly bySubject = new Map<string, Set<RoomTail>>();
  private started: Promise<void> | undefined;
  private stopped = false;

  constructor(
    consumer: (onMessage: (message: Msg, seq: number) => boolean, onFailed: (reason: string) => void) => NatsPushConsumer,
    private readonly incarnation: string,
    private readonly reads: NatsLogReader,
    private readonly onStop: () => void,
  ) {
    this.consumer = consumer(
      (message, seq) => this.dispatch(message, seq),
      (reason) => this.failAll(reason),
    );
  }

  start(): Promise<void> {
    this.started ??= this.consumer.start();
    return this.started;
  }

  /**
   * Adds a tail; resolves once it delivers live (after catching up from the log, if it
   * was behind the reader's position). Registered at once, so the reader lives on.
   */
  attach(tail: RoomTail): Promise<void> {
    if (this.stopped) return Promise.reject(new GeoTransportUnavailableError(`the reader of stream ${tail.stream} stopped; tail again`));
    if (tail.incarnation !== this.incarnation) {
      // The stream was created again since this reader started (or since the tail read it):
      // the reader's next consumer finds out which, and fails the tails of the old one.
      this.consumer.renew();
      return Promise.reject(new GeoTransportUnavailableError(`the stream of room "${tail.room}" was recreated; tail it again`));
    }
    if (tail.closed) return Promise.resolve();
    tail.shared = this;
    const tails = this.bySubject.get(tail.subject) ?? new Set<RoomTail>();
    tails.add(tail);
    this.bySubject.set(tail.subject, tails);
    // Everything after the reader's position reaches the tail live; what it has not
    // delivered up to there comes from the log first, live messages held meanwhile.
    const upTo = this.consumer.position;
    const behind = tail.delivered < upTo;
    if (behind) tail.hold();
    return this.start().then(() => (behind ? tail.catchUp(upTo, this.reads) : undefined));
  }

  detach(tail: RoomTail): void {
    const tails = this.bySubject.get(tail.subject);
    tails?.delete(tail);
    if (tails?.size === 0) this.bySubject.delete(tail.subject);
    if (this.bySubject.size === 0) this.stop();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.consumer.stop();
    this.onStop();
  }

  private dispatch(message: Msg, seq: number): boolean {
    const tails = this.bySubject.get(message.subject);
    if (tails) for (const tail of tails) tail.onMessage(message, seq);
    return true;
  }

  private failAll(reason: string): void {
    for (const tails of [...this.bySubject.values()]) for (const tail of [...tails]) tail.fail(`room "${tail.room}": ${reason}`);
    this.stop();
  }
}
