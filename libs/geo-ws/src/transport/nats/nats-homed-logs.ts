import type { GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogHead, GeoReadResult, GeoSubscription } from '../geo-transport.interface.js';
import { HomeStreamReplacedError, type NatsHomes } from './nats-homes.js';
import type { NatsLogReader, SegmentReadResult } from './nats-log.reader.js';
import type { NatsLogRef, NatsRoomHome } from './nats-names.js';
import {
  MAX_PAST_SEGMENTS,
  nextSegmentLog,
  oldestSegmentLog,
  pastSegmentLogs,
  positionOf,
  segmentLog,
  segmentStart,
  streamSeqAt,
  termAt,
} from './nats-segments.js';
import type { NatsTails } from './nats-tails.js';

export type HomedLog = NatsLogRef & { home: NatsRoomHome };

/** How long a read that met a seal waits for the record of the move to reach this instance. */
const RECORD_WAIT_MS = 10_000;

/**
 * Reads, heads and tails of homed rooms across their segments (see `nats-segments.ts`):
 * positions of a past segment are read from its stream up to its seal, then the next
 * segment's, and a tail that meets a seal goes on in the next segment, so members see one
 * log, in one order, whatever moves it made.
 */
export class NatsHomedLogs {
  constructor(
    private readonly homes: NatsHomes,
    private readonly reads: NatsLogReader,
    private readonly tails: NatsTails,
  ) {}

  /** Up to `limit` events after `position`, from its segment on into the next ones, as one log. */
  async read(located: HomedLog, position: number, limit: number): Promise<GeoReadResult> {
    let log = located;
    let after = position;
    let truncated = false;
    const events: GeoLoggedEnvelope[] = [];
    for (let hop = 0; hop <= MAX_PAST_SEGMENTS + 2; hop++) {
      const term = termAt(after);
      let segment = segmentLog(log, term);
      if (!segment && term > log.home.term) {
        // A position of a term this instance has not heard of yet: ask the bucket.
        log = await this.recordAfter(log, log.home.term - 1);
        segment = segmentLog(log, term);
        if (!segment) return { ...(await this.head(log)), events, truncated: true };
      }
      if (!segment) {
        // Older than the oldest segment the record keeps: read as trimmed.
        segment = oldestSegmentLog(log);
        after = segmentStart(segment.home);
        truncated = true;
      }
      const result = await this.readSegment(segment, after, limit - events.length);
      truncated ||= result.truncated;
      for (const event of result.events) events.push({ ...event, seq: positionOf(segment.home.term, event.seq) });
      const past = segment.home.sealSeq !== undefined;
      if (!past && !result.sealed)
        return { epoch: result.epoch, events, truncated, lastSeq: positionOf(segment.home.term, result.lastSeq) };
      if (events.length >= limit) return { epoch: result.epoch, events, truncated, lastSeq: (await this.head(log)).lastSeq };
      // The segment has nothing more: the next one, once the record says which.
      if (!past) log = await this.recordAfter(log, segment.home.term);
      after = Math.max(events.at(-1)?.seq ?? after, segmentStart(nextSegmentLog(log, segment.home.term).home));
    }
    throw new GeoTransportUnavailableError(`room "${located.room}" kept moving during a read; retry`);
  }

  /** The current segment's head; the first retained event is looked for from the oldest segment kept. */
  async head(log: HomedLog): Promise<GeoLogHead> {
    const { epoch, firstSeq, lastSeq } = await this.reads.head(log);
    const last = positionOf(log.home.term, lastSeq);
    for (const segment of pastSegmentLogs(log)) {
      const first = await this.reads.firstPosition(segment).catch(() => undefined);
      if (first && first.seq < segment.home.sealSeq!) return { epoch, firstSeq: positionOf(segment.home.term, first.seq), lastSeq: last };
    }
    return { epoch, firstSeq: firstSeq > lastSeq ? last + 1 : positionOf(log.home.term, firstSeq), lastSeq: last };
  }

  /**
   * A tail across segments: stored events of past segments by reads, then a live tail of
   * the current one, replaced by the next segment's when it meets the seal.
   */
  async tail(
    located: HomedLog,
    position: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
    shared = false,
  ): Promise<GeoSubscription> {
    const tail = new FollowingTail(this, this.homes, this.tails, located, position, onEvent, onError, shared);
    await tail.start();
    return { close: () => tail.close() };
  }

  /** A segment's events after a position (stream sequences); a past segment whose stream was created again has none left. */
  private async readSegment(segment: HomedLog, after: number, limit: number): Promise<SegmentReadResult> {
    const from = termAt(after) === segment.home.term ? streamSeqAt(after) : segment.home.startSeq;
    try {
      return await this.reads.read(segment, from, limit);
    } catch (error) {
      if (!(error instanceof HomeStreamReplacedError) || segment.home.sealSeq === undefined) throw error;
      const { epoch } = await this.reads.head(nextSegmentLog(segment, segment.home.term));
      return { epoch, events: [], truncated: true, lastSeq: 0, sealed: true };
    }
  }

  /** The room's record once it is past `term` (a move this instance met the seal of before hearing of it). */
  async recordAfter(log: HomedLog, term: number): Promise<HomedLog> {
    const found = await this.homes.recordWhere(log, (home) => home.term > term, RECORD_WAIT_MS);
    if (!found) throw new GeoTransportUnavailableError(`room "${log.room}" moved, and its new home is not known yet; retry`);
    return found;
  }
}

/** One tail of a homed room, following it from segment to segment. */
class FollowingTail {
  /** The last position delivered. */
  private delivered: number;
  /** The live tail of the current segment. */
  private live: GeoSubscription | undefined;
  /** The epoch the tails delivered events of, and the generation it was taken in. */
  private epoch: { epoch: string; generation: number } | undefined;
  /** Segment changes run one at a time. */
  private advancing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly logs: NatsHomedLogs,
    private readonly homes: NatsHomes,
    private readonly tails: NatsTails,
    private log: HomedLog,
    position: number,
    private readonly onEvent: (event: GeoLoggedEnvelope) => void,
    private readonly onError: ((error: Error) => void) | undefined,
    private readonly shared: boolean,
  ) {
    this.delivered = position;
  }

  /** Catches up and opens the live tail; rejects when it cannot start (retention passed the position). */
  async start(): Promise<void> {
    try {
      await this.advance(true);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  private get isClosed(): boolean {
    return this.closed;
  }

  close(): Promise<void> {
    this.closed = true;
    const live = this.live;
    this.live = undefined;
    return live ? live.close() : Promise.resolve();
  }

  /** The live tail met its segment's seal: on to the next segment. */
  private next(sealedTerm: number): void {
    this.advancing = this.advancing.then(() => this.advance(false, sealedTerm)).catch((error: unknown) => this.fail(error));
  }

  /**
   * Reads past segments up to the current one, then tails it live. `sealedTerm`: the
   * segment whose seal the live tail met, so everything of it was delivered (no read).
   */
  private async advance(first: boolean, sealedTerm?: number): Promise<void> {
    const old = this.live;
    this.live = undefined;
    await old?.close();
    for (;;) {
      if (this.closed) return;
      const cached = this.homes.cached(this.log)?.home;
      if (cached && cached.generation === this.log.home.generation && cached.term > this.log.home.term)
        this.log = { ...this.log, home: cached };
      if (sealedTerm !== undefined && termAt(this.delivered) === sealedTerm && this.log.home.term > sealedTerm) {
        this.delivered = Math.max(this.delivered, segmentStart(nextSegmentLog(this.log, sealedTerm).home));
      } else if (termAt(this.delivered) < this.log.home.term) {
        const page = await this.logs.read(this.log, this.delivered, 256);
        if (page.truncated) {
          throw new GeoTransportUnavailableError(
            `cannot tail room "${this.log.room}" after seq ${this.delivered}: retention removed events after it`,
          );
        }
        for (const event of page.events) this.deliver(event);
        if (page.events.length === 0) this.delivered = Math.max(this.delivered, segmentStart(this.log.home));
      } else if (await this.stillCurrent()) {
        break;
      }
    }
    const { term, startSeq, generation } = this.log.home;
    const from = termAt(this.delivered) === term ? streamSeqAt(this.delivered) : startSeq;
    // Straight from a seal to the start of the next segment: nothing to look up in its home.
    const switched = sealedTerm === term - 1 && from === startSeq && this.epoch?.generation === generation;
    const subscription = await this.tails.open(
      this.log,
      from,
      (event) => this.deliver({ ...event, seq: positionOf(term, event.seq) }),
      (error) => this.fail(error),
      // A segment change reads through the stream's shared reader: an event waits for it.
      !first || this.shared,
      () => this.next(term),
      switched ? { epoch: this.epoch!.epoch } : undefined,
    );
    this.epoch = { epoch: subscription.epoch, generation };
    // Closed while the tail opened? (A getter: the check above may be stale after the await.)
    if (this.isClosed) await subscription.close();
    else this.live = subscription;
  }

  /**
   * Whether the segment the tail is about to follow live has no seal yet. A tail started
   * past a seal would never meet it and would take what late appends left after it for
   * events; so unless the cache is fresh and shows no move, the record is asked.
   */
  private async stillCurrent(): Promise<boolean> {
    const { term } = this.log.home;
    const cached = this.homes.cached(this.log)?.home;
    if (cached && cached.term === term && !cached.moving && this.homes.isFresh()) return true;
    const record = await this.homes.fetch(this.log);
    if (!record || (record.home.term === term && !record.home.moving)) return true;
    this.log = record.home.moving ? await this.logs.recordAfter(this.log, term) : { ...this.log, home: record.home };
    return false;
  }

  private deliver(event: GeoLoggedEnvelope): void {
    if (this.closed || event.seq <= this.delivered) return;
    this.delivered = event.seq;
    this.onEvent(event);
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    void this.close();
    this.onError?.(error instanceof Error ? error : new Error(String(error)));
  }
}
