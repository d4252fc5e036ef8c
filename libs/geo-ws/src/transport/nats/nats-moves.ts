import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { GeoEnvelopeDraft } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import { LEASE_MARGIN_MS, LEASE_MS, type NatsHomes } from './nats-homes.js';
import type { NatsLogReader } from './nats-log.reader.js';
import type { NatsLogRef, NatsNames, NatsRoomHome } from './nats-names.js';
import { ALIAS_HEADER, MAX_PAST_SEGMENTS, MAX_TERM, positionOf, SEAL_HEADER } from './nats-segments.js';

/** A move recorded this long ago and not finished (its mover died) is finished by whoever meets it. */
export const STALE_MOVE_MS = LEASE_MS * 4;
/** How long an append waits for a move under way to finish before it fails as unavailable (the client retries). */
const MOVE_WAIT_MS = STALE_MOVE_MS + 5000;

type HomedLog = NatsLogRef & { home: NatsRoomHome };

/** A copy of a segment's event ids into aliases, under way (see `NatsMoves.copyAliases`). */
interface AliasCopy {
  done: Promise<number>;
  last(): number | undefined;
  /** The alias publishes made so far, each resolving once stored. */
  acks: readonly Promise<unknown>[];
  stop(): void;
}

/** How long after the seal is stored the live alias reader may take to meet it before gets finish its work. */
const SEAL_SEEN_MS = 150;

/**
 * A move this instance is finishing, as its appends' confirmations need it: the seal
 * once handed to the connection, resolving with its stream sequence when stored.
 */
interface OwnSeal {
  generation: number;
  term: number;
  /** When the move was recorded (`moving.since`): the shortcut holds only well before others may finish it. */
  since: number;
  seal?: Promise<number | undefined>;
}

/**
 * Moves of a room's log from its home region to another, without losing, repeating or
 * reordering an event (see "Moves" in docs/TRANSPORTS.md):
 *
 * 1. the record gets `moving` (a compare-and-set on the homes bucket); appends keep going
 *    to the old home, but each one acked from then on is confirmed against the seal;
 * 2. the mover waits {@link LEASE_MS}: an instance whose cache did not show the move yet
 *    may only take an ack as final while its cache is fresh (`NatsHomes.isFresh`), so
 *    every append acked that way was stored before the seal. Meanwhile it reads where the
 *    next segment starts and starts copying aliases (step 4);
 * 3. a seal marker is appended to the old segment's subject: its events are those before
 *    it; an append stored after it (acked late) is not the room's and is sent again;
 * 4. alias markers for the segment's events of the last dedup window, up to the seal, are
 *    in the new home's stream, so an `event_id` retried after the move is a duplicate there;
 * 5. the record names the new home under the next term, with the sealed segment kept in
 *    `past` for readers of older positions.
 *
 * Every step is idempotent (the seal and the aliases carry `Nats-Msg-Id`s), so a move left
 * half done by a mover that died is finished by whoever meets it later.
 */
export class NatsMoves {
  private readonly logger = new Logger(NatsMoves.name);
  /** Per log key: the moves this instance is finishing (see {@link confirm}). */
  private readonly ownSeals = new Map<string, OwnSeal>();

  constructor(
    private readonly names: NatsNames,
    private readonly homes: NatsHomes,
    private readonly epochs: NatsEpochs,
    private readonly reads: NatsLogReader,
    private readonly clients: () => NatsClients,
    private readonly dedupWindowMs: number,
    /** The stream a segment's live events are read from here: its home stream, or this region's mirror of it. */
    private readonly readStream: (segment: HomedLog) => string,
  ) {}

  /** Moves the room's log to `to`; resolves with the log where it lives then. Places a room with no home in `to`. */
  async move(log: GeoLogRef, to: string): Promise<NatsLogRef> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const record = await this.homes.fetch(log);
      if (!record) return this.homes.place(log, to);
      const { home, revision } = record;
      if (!home.moving && home.region === to) return { ...log, home };
      // A move under way is finished by the instance that began it (see confirm), or by
      // anyone once it is stale.
      if (home.moving) return this.settled({ ...log, home });
      if (home.term >= MAX_TERM)
        throw new GeoTransportUnavailableError(`room "${log.room}" has moved ${home.term - 1} times: no more moves in this epoch`);
      const moving: NatsRoomHome = { ...home, moving: { to, since: Date.now() } };
      const movingRevision = await this.homes.replace(log, moving, revision);
      if (movingRevision === undefined) continue; // changed meanwhile: look again
      return this.finishing({ ...log, home: moving }, movingRevision);
    }
    throw new GeoTransportUnavailableError(`the home of room "${log.room}" kept changing; retry the move`);
  }

  /**
   * Waits until the room's move under way is finished (finishing it when it is stale) and
   * returns where the room lives then.
   */
  async settled(log: HomedLog): Promise<HomedLog> {
    const deadline = Date.now() + MOVE_WAIT_MS;
    for (let current = log; ;) {
      if (!current.home.moving) return current;
      if (Date.now() - current.home.moving.since >= STALE_MOVE_MS) {
        const finished = await this.finishing(current);
        if (finished.home) return finished as HomedLog;
      }
      if (Date.now() >= deadline) throw new GeoTransportUnavailableError(`room "${log.room}" is moving; retry`);
      current = await this.nextRecord(current, deadline);
    }
  }

  /**
   * Whether an event acked at stream sequence `seq` of the segment `log.home` belongs to the
   * room: true when stored before the segment's seal (or no seal can come before it).
   */
  async confirm(log: HomedLog, seq: number, ackedAt: number): Promise<boolean> {
    const own = this.ownSealOf(log);
    // This instance seals the segment: an ack it got before sending the seal was stored
    // before it, and one after is compared with the seal's sequence.
    if (own && !own.seal) return true;
    const ownSealSeq = own ? await own.seal : undefined;
    if (ownSealSeq !== undefined) return seq < ownSealSeq;
    const cached = this.homes.cached(log)?.home;
    const sealedSeq = cached?.generation === log.home.generation ? sealOf(cached, log.home.term) : undefined;
    if (sealedSeq !== undefined) return seq < sealedSeq;
    // The cache showed this term with no move under way while fresh: stored before any seal;
    // or the move began, but the ack came before the seal could be written.
    if (cached && cached.term === log.home.term && cached.generation === log.home.generation) {
      if (!cached.moving && this.homes.isFresh(ackedAt)) return true;
      if (cached.moving && ackedAt < this.homes.fenceOf(log)) return true;
    }
    const deadline = Date.now() + MOVE_WAIT_MS;
    for (;;) {
      const record = await this.homes.fetch(log);
      if (!record) return true;
      const { home } = record;
      if (home.generation !== log.home.generation) return false;
      if (home.term === log.home.term && !home.moving) return true;
      const sealSeq = sealOf(home, log.home.term);
      if (sealSeq !== undefined) return seq < sealSeq;
      if (home.term > log.home.term) return false; // sealed long ago, no longer recorded: not an event acked now
      if (Date.now() - (home.moving?.since ?? 0) >= STALE_MOVE_MS) await this.finishing({ ...log, home }).catch(() => undefined);
      else await this.nextRecord({ ...log, home }, deadline);
      if (Date.now() >= deadline) throw new GeoTransportUnavailableError(`room "${log.room}" is moving; retry`);
    }
  }

  /**
   * {@link finish}, tried again at once when a step fails (each is idempotent): the room's
   * publishers wait while it is recorded as moving, and others would only finish it after
   * {@link STALE_MOVE_MS}. `revision` (the moving record's) is given by the instance that
   * recorded the move, so no one else seals it before it is stale.
   */
  private async finishing(log: HomedLog, revision?: number): Promise<NatsLogRef> {
    const key = this.names.logKey(log);
    const own: OwnSeal | undefined =
      revision !== undefined ? { generation: log.home.generation, term: log.home.term, since: log.home.moving!.since } : undefined;
    if (own) this.ownSeals.set(key, own);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.finish(log, attempt === 1 ? revision : undefined, own);
        } catch (error) {
          if (attempt >= 3) throw error;
          this.logger.warn(`moving room "${log.room}": ${error instanceof Error ? error.message : String(error)}; trying again`);
        }
      }
    } finally {
      if (own && this.ownSeals.get(key) === own) this.ownSeals.delete(key);
    }
  }

  /**
   * Steps 2 to 5 of a move recorded as `log.home.moving`: while the lease runs out, the new
   * segment's start is read and the aliases of the old one's events are copied, by one
   * reader that goes on until it meets the seal; so once the seal is written, the move is
   * recorded as soon as that reader has seen it. `revision`: the moving record's, when
   * this instance just wrote it (the record is then replaced without reading it first);
   * `own`: the seal as this instance's confirmations see it.
   */
  private async finish(log: HomedLog, revision: number | undefined, own: OwnSeal | undefined): Promise<NatsLogRef> {
    const { home } = log;
    const to = home.moving!.to;
    const key = this.names.logKey(log);
    const { nats, publisher } = this.clients();
    await this.homes.homeStreamReady(to);
    const next = this.nextSegment(log, 0);
    // Nothing is appended under the next term before it is recorded: its start can be read now.
    const started = this.epochs.streamHead(this.names.homeStream(to));
    const copy = this.copyAliases(log, next);
    // Both awaited below, after the lease: marked handled now, or a failure meanwhile would be an unhandled rejection.
    started.catch(() => undefined);
    const left = home.moving!.since + LEASE_MS + LEASE_MARGIN_MS - Date.now();
    if (left > 0) await sleep(left);
    // 3. The seal.
    const sealHeaders = nats.core.headers();
    sealHeaders.set(SEAL_HEADER, String(home.term));
    sealHeaders.set('Nats-Msg-Id', `${key}:seal:${home.generation}:${home.term}`);
    const sealing = publisher.publish(this.names.subject(log), '', sealHeaders);
    // Set once, never unset (a retry's seal is the same message); one whose fate is
    // unknown (the publish failed) leaves confirmations to the record.
    if (own)
      own.seal = sealing.then(
        (ack) => ack.seq,
        () => undefined,
      );
    const seal = await sealing.catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    // 4. Every alias written, up to the seal.
    const [head, aliases] = await Promise.all([started, this.copiedToSeal(log, next, copy, seal.seq)]);
    // 5. The record, replaced at the moving record's revision when known (no read first).
    const moved: NatsRoomHome = { ...this.nextSegment(log, seal.seq).home, incarnation: head.incarnation, startSeq: head.lastSeq };
    if (revision !== undefined && (await this.homes.replace(log, moved, revision)) !== undefined) return this.recorded(log, moved, aliases);
    const current = await this.homes.fetch(log);
    if (!current || current.home.term !== home.term || !current.home.moving) return { ...log, ...(current ? { home: current.home } : {}) };
    if ((await this.homes.replace(log, moved, current.revision)) === undefined)
      return { ...log, home: (await this.homes.fetch(log))?.home ?? moved };
    return this.recorded(log, moved, aliases);
  }

  private recorded(log: HomedLog, moved: NatsRoomHome, aliases: number): HomedLog {
    this.logger.debug(`room "${log.room}" moved from ${log.home.region} to ${moved.region} (term ${moved.term}, ${aliases} aliases)`);
    return { ...log, home: moved };
  }

  /**
   * The seal this instance is writing for the segment `log.home`, having begun its move,
   * while nobody else may finish it: until a lease before others count it stale.
   */
  private ownSealOf(log: HomedLog): OwnSeal | undefined {
    const own = this.ownSeals.get(this.names.logKey(log));
    if (!own || own.generation !== log.home.generation || own.term !== log.home.term) return undefined;
    return Date.now() < own.since + STALE_MOVE_MS - LEASE_MS ? own : undefined;
  }

  /**
   * The aliases copied up to the seal, at `sealSeq`. A live reader that has not met the
   * seal shortly after it was stored (an ordered consumer was seen to stall for seconds
   * under load) is stopped, and what it did not reach is copied by gets of the segment's
   * events up to the seal, from its home stream; by a new reader if it read nothing yet.
   */
  private async copiedToSeal(log: HomedLog, next: HomedLog, copy: AliasCopy, sealSeq: number): Promise<number> {
    const settled = await Promise.race([copy.done, sleep(SEAL_SEEN_MS).then(() => undefined)]);
    if (settled !== undefined) return settled;
    copy.stop();
    const last = copy.last();
    const [, rest] = await Promise.all([
      Promise.all(copy.acks),
      last === undefined ? this.copyAliases(log, next).done : this.copyByGets(log, next, last + 1, sealSeq),
    ]);
    return copy.acks.length + rest;
  }

  /** Aliases for the segment's events from stream sequence `from` up to the seal, by gets (one per event). */
  private async copyByGets(segment: HomedLog, next: HomedLog, from: number, sealSeq: number): Promise<number> {
    let copied = 0;
    for (let seq = from; seq < sealSeq; copied++) {
      const stored = await this.reads.next(segment, seq);
      if (!stored || stored.seq >= sealSeq) break;
      await this.alias(segment, next, stored.seq, stored.json<Partial<GeoEnvelopeDraft>>(), stored.header.get(EPOCH_HEADER));
      seq = stored.seq + 1;
    }
    return copied;
  }

  /**
   * Stores an alias of the segment's event at stream sequence `seq` in the next segment's
   * stream: a marker under its `event_id` naming its position, so a retry there is a duplicate.
   */
  private alias(
    segment: HomedLog,
    next: HomedLog,
    seq: number,
    draft: Partial<GeoEnvelopeDraft>,
    epoch: string | undefined,
  ): Promise<unknown> {
    if (typeof draft.event_id !== 'string') return Promise.resolve();
    const { nats, publisher } = this.clients();
    const headers = nats.core.headers();
    headers.set('Nats-Msg-Id', `${this.names.logKey(segment)}:${draft.event_id}`);
    headers.set(ALIAS_HEADER, String(positionOf(segment.home.term, seq)));
    if (epoch) headers.set(EPOCH_HEADER, epoch);
    return publisher.publish(this.names.aliasSubject(next), '', headers);
  }

  /** The record of the segment after `log.home`'s, once the old one is sealed at `sealSeq` (its `startSeq` set by the caller). */
  private nextSegment(log: HomedLog, sealSeq: number): HomedLog {
    const { home } = log;
    const past = [
      ...(home.past ?? []),
      { region: home.region, term: home.term, incarnation: home.incarnation, startSeq: home.startSeq, sealSeq },
    ].slice(-MAX_PAST_SEGMENTS);
    return {
      ...log,
      home: { region: home.moving!.to, term: home.term + 1, generation: home.generation, incarnation: '', startSeq: 0, past },
    };
  }

  /**
   * Copies the ids of the segment's events stored within the dedup window into alias
   * markers in the next segment's stream, reading on until the seal. `done` resolves once
   * every alias is stored; `stop` ends the reading early (`done` then rejects); `last` is
   * the last sequence read, and `acks` the aliases published.
   */
  private copyAliases(segment: HomedLog, next: HomedLog): AliasCopy {
    const { js, nats } = this.clients();
    let stopped = false;
    let stopReading = (): void => undefined;
    let last: number | undefined;
    const acks: Promise<unknown>[] = [];
    const copy = async (): Promise<number> => {
      const start = { opt_start_time: new Date(Date.now() - this.dedupWindowMs).toISOString() };
      // From this region's mirror when there is one: a consumer in another cluster was seen to stall.
      const consumer = await js.consumers
        .get(this.readStream(segment), { filter_subjects: this.names.subject(segment), ...start })
        .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
      let sealed = false;
      try {
        // Read as it comes (not in fetched batches, which wait out their expiry): the move ends once the seal is seen.
        const messages = await consumer.consume({ max_messages: 256 });
        stopReading = () => messages.stop();
        const timer = setTimeout(stopReading, MOVE_WAIT_MS);
        try {
          if (stopped) return 0;
          for await (const message of messages) {
            if (message.headers?.has(SEAL_HEADER)) {
              sealed = true;
              break;
            }
            last = message.seq;
            const ack = this.alias(
              segment,
              next,
              message.seq,
              message.json<Partial<GeoEnvelopeDraft>>(),
              message.headers?.get(EPOCH_HEADER),
            );
            ack.catch(() => undefined); // awaited together below (or by whoever stopped the copy), unless the copy fails first
            acks.push(ack);
          }
        } finally {
          clearTimeout(timer);
          messages.stop();
        }
        if (!sealed) throw new GeoTransportUnavailableError(`the seal of room "${segment.room}" did not come back in time`);
        await Promise.all(acks);
      } catch (error) {
        throw error instanceof GeoTransportUnavailableError ? error : unavailable(nats, error);
      } finally {
        void consumer.delete().catch(() => undefined);
      }
      return acks.length;
    };
    const done = copy();
    done.catch(() => undefined); // awaited by the caller, maybe after it stopped it
    return {
      done,
      last: () => last,
      acks,
      stop: () => {
        stopped = true;
        stopReading();
      },
    };
  }

  /** The room's next record this instance learns, or the current one at the deadline. */
  private async nextRecord(log: HomedLog, deadline: number): Promise<HomedLog> {
    const changed = (home: NatsRoomHome) => home.term !== log.home.term || !!home.moving !== !!log.home.moving;
    return (await this.homes.recordWhere(log, changed, Math.min(deadline - Date.now(), LEASE_MS))) ?? log;
  }
}

/** The stream sequence of the seal of `term`'s segment, when `home` records it. */
function sealOf(home: NatsRoomHome, term: number): number | undefined {
  return home.past?.find((segment) => segment.term === term)?.sealSeq;
}
