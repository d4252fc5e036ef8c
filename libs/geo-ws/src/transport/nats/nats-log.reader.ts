import { Logger } from '@nestjs/common';
import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogHead, GeoReadResult } from '../geo-transport.interface.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, joinEpoch, ofEpoch, type NatsEpochs, type StreamHead } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsLogRef, NatsNames } from './nats-names.js';
import { fromRoomStart, generationPart, HomeStreamReplacedError } from './nats-homes.js';
import { ALIAS_HEADER, SEAL_HEADER } from './nats-segments.js';

/** Where one stored event sits: its stream sequence (its `seq`) and its epoch header. */
export interface LogPosition {
  seq: number;
  epoch: string | undefined;
  /** An alias marker's (see `NatsNames.aliasSubject`): the position of the event it stands for. */
  alias?: number;
}

/** A stored message as a read takes it, from a consumer or a direct get. */
interface LogMessage {
  seq: number;
  epoch: string | undefined;
  /** The seal a move wrote after the segment's last event. */
  seal: boolean;
  draft(): GeoEnvelopeDraft;
}

/** A read of one segment: `sealed` when it reached the seal a move wrote after the segment's last event. */
export type SegmentReadResult = GeoReadResult & { sealed: boolean };

type DirectQuery = Parameters<JetStreamManager['direct']['getMessage']>[1];

/** What one look at a log saw: asked together, answered in any order. */
interface LogLook {
  logEpoch: string;
  stream: StreamHead;
  first?: LogPosition;
  last?: LogPosition;
}

/** What reads, heads and tails are answered from (see {@link NatsLogReader.bounds}). */
export interface LogBounds {
  /** The log's full epoch. */
  epoch: string;
  /** The log's stream as the first look saw it. */
  stream: StreamHead;
  /** The room's first and last retained events (both or neither). */
  first?: LogPosition;
  last?: LogPosition;
  /** Retention may have removed events after the position asked about (false when none was asked). */
  truncated: boolean;
  /**
   * The head: the room's last event, or for a room with none retained the stream's last
   * sequence, after which every later event of the room comes (only when asked for).
   */
  lastSeq: number;
}

/** Looks at a log a read makes while its requests keep disagreeing (the log changed under them), then gives up (retryable). */
const MAX_LOOKS = 3;

/**
 * Reads of room logs: bounds by direct gets (any replica answers them) and a stream info,
 * events by a short-lived ordered consumer filtered on the room's subject, or by direct
 * gets when no consumer can be created.
 *
 * Whether retention removed events after a position (`truncated`) is decided from the
 * stream, never from state kept per room or per process, so every instance of every
 * region answers alike (see {@link removedAfter}).
 */
export class NatsLogReader {
  private readonly logger = new Logger(NatsLogReader.name);

  constructor(
    private readonly names: NatsNames,
    private readonly epochs: NatsEpochs,
    private readonly clients: () => NatsClients,
    private readonly timeoutMs: number,
    /** Gets answered by each stream's leader, not any replica or mirror (see {@link get}). */
    private readonly leaderGets = false,
  ) {}

  /**
   * Events of the log (for a homed room: of the segment `log.home`) after stream sequence
   * `position`, their `seq` the stream sequence (the transport makes positions of them).
   */
  async read(log: NatsLogRef, position: number, limit: number): Promise<SegmentReadResult> {
    const afterSeq = fromRoomStart(log, position);
    const bounds = await this.bounds(log, afterSeq, true);
    const { epoch, first, last } = bounds;
    const sealSeq = log.home?.sealSeq;
    if (!first || !last || afterSeq >= last.seq || (sealSeq !== undefined && afterSeq + 1 >= sealSeq)) {
      return { epoch, events: [], truncated: bounds.truncated, lastSeq: bounds.lastSeq, sealed: sealSeq !== undefined };
    }
    // From the position itself when it is still stored (the member's own last event, a
    // witness), else from the room's first retained event: the first message fetched must
    // be that one, or retention removed it, and maybe more after `afterSeq`, since the bounds.
    const from = Math.max(afterSeq, first.seq);
    const { events, firstSeq, sealed } = await this.fetch(log, from, afterSeq, last.seq, limit, epoch);
    return { epoch, events, truncated: bounds.truncated || firstSeq !== from, lastSeq: last.seq, sealed };
  }

  async head(log: NatsLogRef): Promise<GeoLogHead> {
    const { epoch, first, lastSeq } = await this.bounds(log, undefined, true);
    return { epoch, firstSeq: first?.seq ?? lastSeq + 1, lastSeq };
  }

  /** The log's last stored event. */
  lastPosition(log: NatsLogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { last_by_subj: this.names.subject(log) });
  }

  /** The log's first retained event. */
  firstPosition(log: NatsLogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { seq: 1, next_by_subj: this.names.subject(log) });
  }

  /** The stored event a get finds, if any. */
  async direct(log: NatsLogRef, query: DirectQuery): Promise<LogPosition | undefined> {
    const { nats } = this.clients();
    let message: StoredMsg | null;
    try {
      message = await this.get(log, query);
    } catch (error) {
      throw unavailable(nats, error);
    }
    if (!message) return undefined;
    const alias = message.header.get(ALIAS_HEADER);
    return { seq: message.seq, epoch: message.header.get(EPOCH_HEADER), ...(alias ? { alias: Number(alias) } : {}) };
  }

  /**
   * A log's epoch, its room's first and last retained events, its stream's state, and
   * whether retention may have removed events after `afterSeq` (when given). With `head`,
   * `lastSeq` is a head a join may start from: for a room with no event retained, the
   * stream's last sequence, checked by a second look (an event appended meanwhile would
   * otherwise sit below it unseen).
   *
   * The requests of one look run in parallel, so the server may answer them at different
   * moments: every conclusion below holds whichever answered first, or is checked by a
   * second look made after the first one's answers. A look whose gets disagree (one found
   * an event, the other none: the room's first event arrived, or its last aged out, in
   * between) is made again, up to {@link MAX_LOOKS} times, then the caller retries.
   *
   * What it relies on: JetStream assigns stream sequences in order; removal by age takes
   * messages from the front of the stream; a per-room limit removes a room's oldest
   * events, only while the room holds that many, never its last one; `deleteLog` gives the
   * log a new epoch before it purges; and no event is appended and aged out within one
   * look (`maxAgeMs` is at least the dedup window, two minutes in a module).
   */
  async bounds(log: NatsLogRef, position: number | undefined, head: boolean): Promise<LogBounds> {
    this.clients(); // not connected: fail at once, not in four places
    const afterSeq = position === undefined ? undefined : fromRoomStart(log, position);
    for (let attempt = 1; ; attempt++) {
      const look = await this.look(log);
      const bounds = !look.first === !look.last ? await this.settle(log, look, afterSeq, head) : undefined;
      if (bounds) return bounds;
      if (attempt === MAX_LOOKS) {
        throw new GeoTransportUnavailableError(
          `the log of room "${log.room}" changed during each of ${MAX_LOOKS} reads of its bounds; retry`,
        );
      }
    }
  }

  /** One look: the log's own epoch, its stream's state and its first and last events, asked together. */
  private async look(log: NatsLogRef): Promise<LogLook> {
    const [logEpoch, stream, first, last] = await Promise.all([
      this.epochs.logEpoch(log),
      // Asked afresh: positions read from a stream created again must never be reported under the old one's epoch.
      this.epochs.streamHead(this.names.stream(log)),
      this.firstPosition(log),
      this.lastPosition(log),
    ]);
    return { logEpoch, stream, first, last };
  }

  /** The bounds from one look (and a second where needed); undefined when the log changed under it: look again. */
  private async settle(log: NatsLogRef, look: LogLook, afterSeq: number | undefined, head: boolean): Promise<LogBounds | undefined> {
    const { stream, first, last } = look;
    // A room with a home: its epoch counts generations, and a home stream created again
    // since its record was written starts the next one (the transport renews the record).
    if (log.home && stream.incarnation !== log.home.incarnation) throw new HomeStreamReplacedError(log, stream.incarnation);
    const epoch = joinEpoch(look.logEpoch, log.home ? generationPart(log.home.generation) : stream.incarnation);
    if (first && last) {
      const truncated = afterSeq === undefined ? false : await this.removedAfter(log, look, first, afterSeq);
      return truncated === undefined ? undefined : { epoch, stream, first, last, truncated, lastSeq: last.seq };
    }
    // No event of the room is stored. Each event it ever had was removed by age (a per-room
    // trim never removes a room's last event), so it is below the stream's first sequence
    // as any look after the gets sees it; and it was stored before this look's stream info
    // (an event appended and aged out within one look is ruled out), so at or below its last sequence.
    const gone = afterSeq !== undefined && afterSeq < stream.lastSeq;
    if (!head && (!gone || afterSeq + 1 < stream.firstSeq)) return { epoch, stream, truncated: gone, lastSeq: stream.lastSeq };
    // A second look, after the first one's gets: it sees every removal they saw, and its get
    // proves the room still had no event once the first look had its last sequence.
    const [again, firstAgain] = await Promise.all([this.epochs.streamHead(this.names.stream(log)), this.firstPosition(log)]);
    if (firstAgain || again.incarnation !== stream.incarnation) return undefined;
    return { epoch, stream, truncated: gone && afterSeq + 1 < again.firstSeq, lastSeq: stream.lastSeq };
  }

  /**
   * Whether retention may have removed an event of the room after `afterSeq`, given its
   * first retained event `first` (undefined: the log changed meanwhile, look again):
   * - `first` at or before `afterSeq + 1`: no. Age removes from the front and a trim only
   *   removes events older than the room's first retained one, so all after it are kept
   *   (until the read fetches them: see the witness in {@link read}).
   * - `afterSeq + 1` below the stream's first sequence: yes: sequences after it are gone,
   *   and nothing tells whether they were the room's.
   * - otherwise the room's events between `afterSeq` and `first` are gone, if there were
   *   any: by age (then a second look, after the gets, sees the stream's first sequence past
   *   `afterSeq + 1`) or by a trim (then the room held `maxPerSubject` events from the trim
   *   on, so its retained events span at least that many sequences, unless one aged out
   *   since, which the first case catches). So yes if either holds, else no.
   */
  private async removedAfter(log: NatsLogRef, look: LogLook, first: LogPosition, afterSeq: number): Promise<boolean | undefined> {
    const { stream } = look;
    if (afterSeq + 1 >= first.seq) return false;
    if (afterSeq + 1 < stream.firstSeq) return true;
    const [again, lastAgain] = await Promise.all([this.epochs.streamHead(this.names.stream(log)), this.lastPosition(log)]);
    if (again.incarnation !== stream.incarnation) return undefined;
    if (afterSeq + 1 < again.firstSeq || !lastAgain) return true;
    return again.maxPerSubject > 0 && lastAgain.seq - first.seq + 1 >= again.maxPerSubject;
  }

  /**
   * Up to `limit` events of a log after `afterSeq`, reading from stream sequence `from`
   * (`afterSeq` itself, or later) to `last`, and the sequence of the first message read:
   * one short-lived ordered consumer, or, when no consumer can be created (a stream peer
   * is down and the placement picked it), direct gets, which any replica answers.
   */
  private async fetch(
    log: NatsLogRef,
    from: number,
    afterSeq: number,
    last: number,
    limit: number,
    epoch: string,
  ): Promise<{ events: GeoLoggedEnvelope[]; firstSeq: number | undefined; sealed: boolean }> {
    const { js, nats } = this.clients();
    const events: GeoLoggedEnvelope[] = [];
    let firstSeq: number | undefined;
    let sealed = false;
    const sealSeq = log.home?.sealSeq ?? Infinity;
    /** Takes one message; false once the read has what it needs. */
    const take = (message: LogMessage): boolean => {
      firstSeq ??= message.seq;
      // The segment ends at its seal: what a late append left after it is not the room's.
      if (message.seal || message.seq >= sealSeq) {
        sealed = true;
        return false;
      }
      // Events left over from before a reset (another epoch) are not part of this log.
      if (message.seq > afterSeq && ofEpoch(message.epoch, epoch)) events.push({ ...message.draft(), seq: message.seq });
      return events.length < limit && message.seq < last;
    };
    let consumer;
    try {
      consumer = await js.consumers.get(this.names.stream(log), { filter_subjects: this.names.subject(log), opt_start_seq: from });
    } catch (error) {
      this.logger.debug(`read of room "${log.room}" by direct gets: ${error instanceof Error ? error.message : String(error)}`);
      await this.fetchDirect(log, from, take);
      return { events, firstSeq, sealed };
    }
    try {
      // One more than asked for: the first may be the position itself.
      const messages = await consumer.fetch({ max_messages: limit + 1, expires: this.timeoutMs });
      for await (const message of messages) {
        const headers = message.headers;
        const seal = headers?.has(SEAL_HEADER) ?? false;
        if (!take({ seq: message.seq, epoch: headers?.get(EPOCH_HEADER), seal, draft: () => message.json<GeoEnvelopeDraft>() })) break;
      }
    } catch (error) {
      throw unavailable(nats, error);
    } finally {
      void consumer.delete().catch(() => undefined);
    }
    return { events, firstSeq, sealed };
  }

  /**
   * The log's first stored message at or after stream sequence `from`, by a direct get (any
   * replica answers); from `stream` when given (a mirror of the log's stream, read by a
   * tail up to where its reader got: everything up to there is in it).
   */
  async next(log: NatsLogRef, from: number, stream?: string): Promise<StoredMsg | null> {
    const { nats } = this.clients();
    return this.get(log, { seq: from, next_by_subj: this.names.subject(log) }, stream).catch((error: unknown) =>
      Promise.reject(unavailable(nats, error)),
    );
  }

  /**
   * One stored message of the log's stream: a direct get (any replica answers), or, where
   * mirrors copy the stream (`leaderGets`), a get the stream's leader answers. NATS lets a
   * mirror of a direct-enabled stream answer its direct gets, from a copy that may lag:
   * the bounds above would then miss events the stream holds.
   */
  private get(log: NatsLogRef, query: DirectQuery, stream = this.names.stream(log)): Promise<StoredMsg | null> {
    const { jsm } = this.clients();
    // The leader's get takes the same queries on NATS 2.9+ (next_by_subj included), though the client types omit it.
    return this.leaderGets
      ? jsm.streams.getMessage(stream, query as Parameters<typeof jsm.streams.getMessage>[1])
      : jsm.direct.getMessage(stream, query);
  }

  /** Direct gets of a log's next message from `from` on, until `take` has what it needs or the log ends. */
  private async fetchDirect(log: NatsLogRef, from: number, take: (message: LogMessage) => boolean): Promise<void> {
    for (let next = from; ;) {
      const message = await this.next(log, next);
      if (!message) return;
      const seal = message.header.has(SEAL_HEADER);
      if (!take({ seq: message.seq, epoch: message.header.get(EPOCH_HEADER), seal, draft: () => message.json<GeoEnvelopeDraft>() })) return;
      next = message.seq + 1;
    }
  }
}
