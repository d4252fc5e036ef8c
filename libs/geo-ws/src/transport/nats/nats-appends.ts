import { setTimeout as sleep } from 'node:timers/promises';
import type { GeoEnvelopeDraft } from '../../envelope/geo-envelope.interface.js';
import type { GeoAppendResult } from '../geo-transport.interface.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, fullEpoch, joinEpoch, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsLogReader } from './nats-log.reader.js';
import type { NatsLogRef, NatsNames } from './nats-names.js';
import { generationPart, LEASE_MARGIN_MS, LEASE_MS, type NatsHomes } from './nats-homes.js';
import type { NatsMoves } from './nats-moves.js';
import type { NatsTakeovers } from './nats-takeovers.js';
import { positionOf } from './nats-segments.js';

/**
 * A move under way whose seal may be written any moment (its lease is over): appends wait
 * for the move instead of going to the old home, where they would land after the seal.
 */
function sealingSoon(log: NatsLogRef): boolean {
  const moving = log.home?.moving;
  return !!moving && Date.now() >= moving.since + LEASE_MS;
}

/**
 * How long appends to a home a takeover just made must still wait: until a lease after the
 * takeover, the lost home may still have taken an ack as final (docs/TRANSPORTS.md, "Takeover").
 */
function takeoverFence(log: NatsLogRef): number {
  const at = log.home?.takenOverAt;
  return at === undefined ? 0 : at + LEASE_MS + LEASE_MARGIN_MS - Date.now();
}

/** What an append needs to know about its log besides the event. */
interface LogState {
  /** The log with its home (room homes), whose stream the event goes to. */
  located: NatsLogRef;
  logEpoch: string;
  /** The epoch's second part: the stream's creation time, or the room's generation (room homes). */
  incarnation: string;
}

/**
 * Appends to room logs. Once a log's epoch and stream incarnation are known (cached after
 * its first append), an append is published at once, in the caller's turn, without
 * waiting for earlier appends' acks: one room's appends are pipelined and reach the
 * stream in the order they were made. Until then an append waits for the look-ups, and
 * later appends of the same log queue behind it, so that order holds from the first one.
 */
export class NatsAppends {
  /** Per log key: settles once the last queued append of the log was handed to the connection. */
  private readonly queued = new Map<string, Promise<unknown>>();

  constructor(
    private readonly names: NatsNames,
    private readonly epochs: NatsEpochs,
    private readonly reads: NatsLogReader,
    private readonly clients: () => NatsClients,
    /** Room homes: where each room's log lives, and its moves; `undefined` without `roomHomes`. */
    private readonly homes: NatsHomes | undefined,
    private readonly moves: NatsMoves | undefined,
    /** The home of a room this region appends first. */
    private readonly placeRoom: (room: string) => string,
    /** Takes over rooms whose home region was lost (room homes with `takeoverAfterMs`). */
    private readonly takeovers?: NatsTakeovers,
  ) {}

  append(log: NatsLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult> {
    let clients: NatsClients;
    try {
      clients = this.clients();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const key = this.names.logKey(log);
    const before = this.queued.get(key);
    const known = before ? undefined : this.known(log);
    if (known) return this.send(clients, draft, known);
    // Look-ups first (or an earlier append of this log still waits for its own): queue,
    // and publish in turn. The turn resolves once published, not once acked.
    const turn = (before ?? Promise.resolve()).then(async () => ({
      acked: this.send(clients, draft, this.known(log) ?? (await this.lookUp(log))),
    }));
    const handedOver = turn.catch(() => undefined);
    this.queued.set(key, handedOver);
    void handedOver.then(() => {
      if (this.queued.get(key) === handedOver) this.queued.delete(key);
    });
    return turn.then(({ acked }) => acked);
  }

  /** The log's state from the caches, when every part is cached (and no move of it is about to seal). */
  private known(log: NatsLogRef): LogState | undefined {
    const located = this.homes ? this.homes.cached(log) : log;
    if (!located || sealingSoon(located) || takeoverFence(located) > 0) return undefined;
    if (located.home && this.takeovers?.isLost(located.home.region)) return undefined;
    const logEpoch = this.epochs.cachedLogEpoch(located);
    const incarnation = located.home ? generationPart(located.home.generation) : this.epochs.cachedIncarnation(this.names.stream(located));
    if (logEpoch === undefined || incarnation === undefined) return undefined;
    return { located, logEpoch, incarnation };
  }

  private async lookUp(log: NatsLogRef): Promise<LogState> {
    let located = this.homes ? await this.homes.place(log, this.placeRoom(log.room)) : log;
    // Its home region silent for long: taken over here (or found taken over elsewhere) first.
    if (located.home && this.takeovers?.isLost(located.home.region))
      located = (await this.takeovers.takeOver({ ...located, home: located.home }).catch(() => undefined)) ?? located;
    const fence = takeoverFence(located);
    if (fence > 0) await sleep(fence);
    // A move about to seal the segment: wait for it, rather than append what would be sent again.
    if (located.home && sealingSoon(located)) located = await this.moves!.settled({ ...located, home: located.home });
    const [logEpoch, incarnation] = await Promise.all([
      this.epochs.logEpoch(located),
      located.home ? generationPart(located.home.generation) : this.epochs.incarnationOf(this.names.stream(located)),
    ]);
    return { located, logEpoch, incarnation };
  }

  /** Publishes now (synchronously), resolves with the stream's answer. */
  private async send({ nats, publisher }: NatsClients, draft: GeoEnvelopeDraft, state: LogState): Promise<GeoAppendResult> {
    const log = state.located;
    const epoch = joinEpoch(state.logEpoch, state.incarnation);
    const headers = nats.core.headers();
    // Only the KV part: whichever stream the message lands in is its incarnation, even if
    // this instance has not noticed yet that the stream was created again.
    headers.set(EPOCH_HEADER, state.logEpoch);
    headers.set('Nats-Msg-Id', `${this.names.logKey(log)}:${draft.event_id}`);
    let ack;
    const { home } = log;
    try {
      ack = await publisher.publish(this.names.subject(log), JSON.stringify(draft), headers);
    } catch (error) {
      // The home region's brokers silent for long: the room is taken over here (or was,
      // elsewhere), and the append goes to its new home.
      const taken = home && (await this.takeovers?.takeOver({ ...log, home }).catch(() => undefined));
      if (taken) return this.append(log, draft);
      throw unavailable(nats, error);
    }
    // A homed room may be moving: an ack is the room's only if stored before the seal.
    if (home && !(await this.moves!.confirm({ ...log, home }, ack.seq, performance.now()))) return this.append(log, draft);
    const seq = home ? positionOf(home.term, ack.seq) : ack.seq;
    if (!ack.duplicate) return { seq, epoch, duplicate: false };
    // The original's epoch is in its headers (it may predate a reset of the log); an alias
    // left by a move stands for an event of an earlier segment, at the position it names.
    const original = await this.reads.direct(log, { seq: ack.seq });
    return { seq: original?.alias ?? seq, epoch: original?.epoch ? fullEpoch(original.epoch, epoch) : epoch, duplicate: true };
  }
}
