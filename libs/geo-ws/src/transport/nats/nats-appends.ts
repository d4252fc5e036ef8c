import type { GeoEnvelopeDraft } from '../../envelope/geo-envelope.interface.js';
import type { GeoAppendResult } from '../geo-transport.interface.js';
import type { GeoLogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { EPOCH_HEADER, fullEpoch, joinEpoch, type NatsEpochs } from './nats-epochs.js';
import { unavailable } from './nats-errors.js';
import type { NatsLogReader } from './nats-log.reader.js';
import type { NatsNames } from './nats-names.js';

/** What an append needs to know about its log besides the event. */
interface LogState {
  logEpoch: string;
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
  ) {}

  append(log: GeoLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult> {
    let clients: NatsClients;
    try {
      clients = this.clients();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const key = this.names.logKey(log);
    const before = this.queued.get(key);
    const known = before ? undefined : this.known(log);
    if (known) return this.send(clients, log, draft, known);
    // Look-ups first (or an earlier append of this log still waits for its own): queue,
    // and publish in turn. The turn resolves once published, not once acked.
    const turn = (before ?? Promise.resolve()).then(async () => ({
      acked: this.send(clients, log, draft, this.known(log) ?? (await this.lookUp(log))),
    }));
    const handedOver = turn.catch(() => undefined);
    this.queued.set(key, handedOver);
    void handedOver.then(() => {
      if (this.queued.get(key) === handedOver) this.queued.delete(key);
    });
    return turn.then(({ acked }) => acked);
  }

  /** The log's state from the caches, when both parts are cached. */
  private known(log: GeoLogRef): LogState | undefined {
    const logEpoch = this.epochs.cachedLogEpoch(log);
    const incarnation = this.epochs.cachedIncarnation(this.names.stream(log));
    if (logEpoch === undefined || incarnation === undefined) return undefined;
    return { logEpoch, incarnation };
  }

  private async lookUp(log: GeoLogRef): Promise<LogState> {
    const [logEpoch, incarnation] = await Promise.all([this.epochs.logEpoch(log), this.epochs.incarnationOf(this.names.stream(log))]);
    return { logEpoch, incarnation };
  }

  /** Publishes now (synchronously), resolves with the stream's answer. */
  private async send({ nats, publisher }: NatsClients, log: GeoLogRef, draft: GeoEnvelopeDraft, state: LogState): Promise<GeoAppendResult> {
    const epoch = joinEpoch(state.logEpoch, state.incarnation);
    const headers = nats.core.headers();
    // Only the KV part: whichever stream the message lands in is its incarnation, even if
    // this instance has not noticed yet that the stream was created again.
    headers.set(EPOCH_HEADER, state.logEpoch);
    headers.set('Nats-Msg-Id', `${this.names.logKey(log)}:${draft.event_id}`);
    let ack;
    try {
      ack = await publisher.publish(this.names.subject(log), JSON.stringify(draft), headers);
    } catch (error) {
      throw unavailable(nats, error);
    }
    if (!ack.duplicate) return { seq: ack.seq, epoch, duplicate: false };
    // The original's epoch is in its headers (it may predate a reset of the log).
    const original = await this.reads.direct(log, { seq: ack.seq });
    return { seq: ack.seq, epoch: original?.epoch ? fullEpoch(original.epoch, epoch) : epoch, duplicate: true };
  }
}
