import { Logger } from '@nestjs/common';
import type { GeoEnvelopeDraft } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import { LEASE_MS, type NatsHomes } from './nats-homes.js';
import type { NatsLogRef, NatsNames, NatsRoomHome } from './nats-names.js';
import { ALIAS_HEADER, MAX_PAST_SEGMENTS, MAX_TERM, positionOf, SEAL_HEADER } from './nats-segments.js';

/** Extra wait after the lease before sealing: covers clock-rate drift and timer lateness between instances. */
const LEASE_MARGIN_MS = 100;
/** A move recorded this long ago and not finished (its mover died) is finished by whoever meets it. */
export const STALE_MOVE_MS = LEASE_MS * 4;
/** How long an append waits for a move under way to finish before it fails as unavailable (the client retries). */
const MOVE_WAIT_MS = STALE_MOVE_MS + 5000;

type HomedLog = NatsLogRef & { home: NatsRoomHome };

/** A copy of a segment's event ids into aliases, under way (see `NatsMoves.copyAliases`). */
interface AliasCopy {
  done: Promise<number>;
  last(): number | undefined;
  stop(): void;
}

/** How long after the seal is written the live alias reader may take to meet it before it is replaced. */
const SEAL_SEEN_MS = 500;

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

  constructor(
    private readonly names: NatsNames,
    private readonly homes: NatsHomes,
    private readonly epochs: NatsEpochs,
    private readonly clients: () => NatsClients,
    private readonly dedupWindowMs: number,
  ) {}

  /** Moves the room's log to `to`; resolves with the log where it lives then. Places a room with no home in `to`. */
  async move(log: GeoLogRef, to: string): Promise<NatsLogRef> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const record = await this.homes.fetch(log);
      if (!record) return this.homes.place(log, to);
      const { home, revision } = record;
      if (!home.moving && home.region === to) return { ...log, home };
      if (home.moving) return this.finishing({ ...log, home });
      if (home.term >= MAX_TERM)
        throw new GeoTransportUnavailableError(`room "${log.room}" has moved ${home.term - 1} times: no more moves in this epoch`);
      const moving: NatsRoomHome = { ...home, moving: { to, since: Date.now() } };
      if (!(await this.homes.replace(log, moving, revision))) continue; // changed meanwhile: look again
      return this.finishing({ ...log, home: moving });
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
        const finished = await this.move(log, current.home.moving.to);
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
    const cached = this.homes.cached(log)?.home;
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
      const sealed = home.past?.find((segment) => segment.term === log.home.term);
      if (sealed?.sealSeq !== undefined) return seq < sealed.sealSeq;
      if (home.term > log.home.term) return false; // sealed long ago, no longer recorded: not an event acked now
      if (Date.now() - (home.moving?.since ?? 0) >= STALE_MOVE_MS) await this.move(log, home.moving!.to).catch(() => undefined);
      else await this.nextRecord({ ...log, home }, deadline);
      if (Date.now() >= deadline) throw new GeoTransportUnavailableError(`room "${log.room}" is moving; retry`);
    }
  }

  /**
   * {@link finish}, tried again at once when a step fails (each is idempotent): the room's
   * publishers wait while it is recorded as moving, and others would only finish it after
   * {@link STALE_MOVE_MS}.
   */
  private async finishing(log: HomedLog): Promise<NatsLogRef> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.finish(log);
      } catch (error) {
        if (attempt >= 3) throw error;
        this.logger.warn(`moving room "${log.room}": ${error instanceof Error ? error.message : String(error)}; trying again`);
      }
    }
  }

  /**
   * Steps 2 to 5 of a move recorded as `log.home.moving`: while the lease runs out, the new
   * segment's start is read and the aliases of the old one's events are copied, by one
   * reader that goes on until it meets the seal; so once the seal is written, the move is
   * recorded as soon as that reader has seen it.
   */
  private async finish(log: HomedLog): Promise<NatsLogRef> {
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
    const seal = await publisher
      .publish(this.names.subject(log), '', sealHeaders)
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    // 4. Every alias written, up to the seal.
    const [head, aliases] = await Promise.all([started, this.copiedToSeal(log, next, copy)]);
    // 5. The record.
    const moved: NatsRoomHome = { ...this.nextSegment(log, seal.seq).home, incarnation: head.incarnation, startSeq: head.lastSeq };
    const current = await this.homes.fetch(log);
    if (!current || current.home.term !== home.term || !current.home.moving) return { ...log, ...(current ? { home: current.home } : {}) };
    if (!(await this.homes.replace(log, moved, current.revision))) return { ...log, home: (await this.homes.fetch(log))?.home ?? moved };
    this.logger.debug(`room "${log.room}" moved from ${home.region} to ${to} (term ${moved.term}, ${aliases} aliases)`);
    return { ...log, home: moved };
  }

  /**
   * The aliases copied up to the seal. A live reader that has not met the seal shortly
   * after it was written (an ordered consumer in another cluster was seen to stall for
   * seconds under load) is replaced by a new one from where it got to: the seal is stored,
   * so that one reads through to it at once.
   */
  private async copiedToSeal(log: HomedLog, next: HomedLog, copy: AliasCopy): Promise<number> {
    const settled = await Promise.race([copy.done, sleep(SEAL_SEEN_MS).then(() => undefined)]);
    if (settled !== undefined) return settled;
    copy.stop();
    const last = copy.last();
    return this.copyAliases(log, next, last === undefined ? undefined : last + 1).done;
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
   * Copies the ids of the segment's events stored within the dedup window (or from stream
   * sequence `from` on) into alias markers in the next segment's stream, reading on until
   * the seal. `done` resolves once every alias is stored; `stop` ends the reading early
   * (`done` then rejects); `last` is the last sequence read.
   */
  private copyAliases(segment: HomedLog, next: HomedLog, from?: number): AliasCopy {
    const { js, nats, publisher } = this.clients();
    const key = this.names.logKey(segment);
    let stopped = false;
    let stopReading = (): void => undefined;
    let last: number | undefined;
    const copy = async (): Promise<number> => {
      const start =
        from === undefined ? { opt_start_time: new Date(Date.now() - this.dedupWindowMs).toISOString() } : { opt_start_seq: from };
      const consumer = await js.consumers
        .get(this.names.stream(segment), { filter_subjects: this.names.subject(segment), ...start })
        .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
      const acks: Promise<unknown>[] = [];
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
            const id = (message.json<GeoEnvelopeDraft>() as Partial<GeoEnvelopeDraft>).event_id;
            if (typeof id !== 'string') continue;
            const headers = nats.core.headers();
            headers.set('Nats-Msg-Id', `${key}:${id}`);
            headers.set(ALIAS_HEADER, String(positionOf(segment.home.term, message.seq)));
            const epoch = message.headers?.get(EPOCH_HEADER);
            if (epoch) headers.set(EPOCH_HEADER, epoch);
            const ack = publisher.publish(this.names.aliasSubject(next), '', headers);
            ack.catch(() => undefined); // awaited together below, unless the copy fails first
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
