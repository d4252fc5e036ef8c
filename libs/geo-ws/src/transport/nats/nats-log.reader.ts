import { Logger } from '@nestjs/common';
import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import type { LogHead, ReadResult } from '../geo-transport.interface.js';
import type { LogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, FIRST_HEADER, joinEpoch, ofEpoch, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

/** Where one stored event sits: its stream sequence (its `seq`), its epoch header, and whether it opened the log. */
export interface LogPosition {
  seq: number;
  epoch: string;
  first: boolean;
}

/** A stored message as a read takes it, from a consumer or a direct get. */
interface LogMessage {
  seq: number;
  epoch: string | undefined;
  draft(): GeoEnvelopeDraft;
}

type DirectQuery = Parameters<JetStreamManager['direct']['getMessage']>[1];

/**
 * Reads of room logs: bounds by direct gets (any replica answers them), events by a
 * short-lived ordered consumer filtered on the room's subject, or by direct gets when no
 * consumer can be created.
 */
export class NatsLogReader {
  private readonly logger = new Logger(NatsLogReader.name);

  constructor(
    private readonly names: NatsNames,
    private readonly epochs: NatsEpochs,
    private readonly clients: () => NatsClients,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Known gap: once every event of a room aged out (`max_age`), nothing is left to tell
   * which stream sequences were the room's, so the log reads as never published
   * (`lastSeq` 0, `truncated` false) and a resume from an earlier position is not told
   * that it lost events; the contract's retention-by-age check appends a fresh event
   * first and does not catch it.
   */
  async read(log: LogRef, afterSeq: number, limit: number): Promise<ReadResult> {
    const { epoch, first, last } = await this.bounds(log);
    if (!first || !last) return { epoch, events: [], truncated: false, lastSeq: 0 };
    // Sequences between `afterSeq` and the first retained event may be other rooms' events:
    // only a first retained event that opened the log proves nothing of this room is gone.
    const truncated = afterSeq + 1 < first.seq && !first.first;
    if (afterSeq >= last.seq) return { epoch, events: [], truncated, lastSeq: last.seq };
    const events = await this.fetch(log, Math.max(afterSeq + 1, first.seq), last.seq, limit, epoch);
    return { epoch, events, truncated, lastSeq: last.seq };
  }

  async head(log: LogRef): Promise<LogHead> {
    const { epoch, first, last } = await this.bounds(log);
    const lastSeq = last?.seq ?? 0;
    return { epoch, firstSeq: first?.seq ?? lastSeq + 1, lastSeq };
  }

  /** The log's last stored event. */
  lastPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { last_by_subj: this.names.subject(log) });
  }

  /** The log's first retained event. */
  firstPosition(log: LogRef): Promise<LogPosition | undefined> {
    return this.direct(log, { seq: 1, next_by_subj: this.names.subject(log) });
  }

  /** The stored event a direct get finds, if any; a log found non-empty is marked started. */
  async direct(log: LogRef, query: DirectQuery): Promise<LogPosition | undefined> {
    const { jsm, nats } = this.clients();
    let message: StoredMsg | null;
    try {
      message = await jsm.direct.getMessage(this.names.stream(log), query);
    } catch (error) {
      throw unavailable(nats, error);
    }
    if (!message) return undefined;
    this.epochs.markStarted(log);
    return { seq: message.seq, epoch: message.header.get(EPOCH_HEADER), first: message.header.get(FIRST_HEADER) === '1' };
  }

  /**
   * A log's epoch and its first and last stored events, read together. The stream's
   * incarnation is asked afresh (in parallel, so at no cost in latency): positions read
   * from a stream created again must never be reported under the old one's epoch.
   */
  private async bounds(log: LogRef): Promise<{ epoch: string; first?: LogPosition; last?: LogPosition }> {
    this.clients(); // not connected: fail at once, not in four places
    const [logEpoch, incarnation, first, last] = await Promise.all([
      this.epochs.logEpoch(log),
      this.epochs.incarnationOf(this.names.stream(log), true),
      this.firstPosition(log),
      this.lastPosition(log),
    ]);
    return { epoch: joinEpoch(logEpoch, incarnation), first, last };
  }

  /**
   * Up to `limit` events of a log from stream sequence `from` to `last`: one short-lived
   * ordered consumer, or, when no consumer can be created (a stream peer is down and the
   * placement picked it), direct gets, which any replica answers.
   */
  private async fetch(log: LogRef, from: number, last: number, limit: number, epoch: string): Promise<GeoLoggedEnvelope[]> {
    const { js, nats } = this.clients();
    const events: GeoLoggedEnvelope[] = [];
    /** Takes one message; false once the read has what it needs. */
    const take = (message: LogMessage): boolean => {
      // Events left over from before a reset (another epoch) are not part of this log.
      if (ofEpoch(message.epoch, epoch)) events.push({ ...message.draft(), seq: message.seq });
      return events.length < limit && message.seq < last;
    };
    let consumer;
    try {
      consumer = await js.consumers.get(this.names.stream(log), { filter_subjects: this.names.subject(log), opt_start_seq: from });
    } catch (error) {
      this.logger.debug(`read of room "${log.room}" by direct gets: ${error instanceof Error ? error.message : String(error)}`);
      await this.fetchDirect(log, from, take);
      return events;
    }
    try {
      const messages = await consumer.fetch({ max_messages: limit, expires: this.timeoutMs });
      for await (const message of messages) {
        if (!take({ seq: message.seq, epoch: message.headers?.get(EPOCH_HEADER), draft: () => message.json<GeoEnvelopeDraft>() })) break;
      }
    } catch (error) {
      throw unavailable(nats, error);
    } finally {
      void consumer.delete().catch(() => undefined);
    }
    return events;
  }

  /** The log's first stored message at or after stream sequence `from`, by a direct get (any replica answers). */
  async next(log: LogRef, from: number): Promise<StoredMsg | null> {
    const { jsm, nats } = this.clients();
    return jsm.direct
      .getMessage(this.names.stream(log), { seq: from, next_by_subj: this.names.subject(log) })
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
  }

  /** Direct gets of a log's next message from `from` on, until `take` has what it needs or the log ends. */
  private async fetchDirect(log: LogRef, from: number, take: (message: LogMessage) => boolean): Promise<void> {
    for (let next = from; ;) {
      const message = await this.next(log, next);
      if (!message) return;
      if (!take({ seq: message.seq, epoch: message.header.get(EPOCH_HEADER), draft: () => message.json<GeoEnvelopeDraft>() })) return;
      next = message.seq + 1;
    }
  }
}
