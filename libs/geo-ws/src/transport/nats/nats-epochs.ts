import type { KV } from '@nats-io/kv';
import { randomUUID } from 'node:crypto';
import type { GeoLogRef } from '../log-ref.js';
import type { NatsClients } from './load-nats.js';
import { unavailable } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

/** Message header with the log's own epoch (the KV part); messages of older versions carry the full epoch. */
export const EPOCH_HEADER = 'Geo-Epoch';
// Earlier versions marked a log's first event with a `Geo-First` header, set by whichever
// instance believed the log was new, and trusted it to mean "nothing of the room was ever
// removed". It could not know: after every event aged out, or when two regions appended
// first at once, the marker hid lost events. It is no longer written, and ignored.
/** The epoch of a log that was never reset: no KV entry, so joining rooms creates no state. */
const INITIAL_LOG_EPOCH = '0';
/** In-process caches per log stay below this many entries (rooms come and go). */
const CACHE_LIMIT = 10_000;

/**
 * A stream's state as one stream-info request saw it (the server reads its state at one
 * moment): what a resume's "did retention remove events after my position?" is decided on.
 */
export interface StreamHead {
  /** The stream's creation time (base 36): a stream created again is another incarnation. */
  incarnation: string;
  /**
   * The first stored stream sequence (`lastSeq + 1` when none is, 0 for a stream never
   * written). Removal by age (and any stream-wide limit) takes messages from the front, so
   * every sequence below it is gone and every one from it on is kept, unless a per-room
   * trim (`maxPerSubject`) or a purge (`deleteLog`) removed it.
   */
  firstSeq: number;
  /** The last assigned stream sequence. */
  lastSeq: number;
  /** The stream's `max_msgs_per_subject` (per-room `maxEvents`); 0 or less: no per-room trims. */
  maxPerSubject: number;
}

/**
 * Epochs of room logs. A log's full epoch is `<log epoch>.<stream incarnation>`:
 * - the log epoch is its KV entry, written only by {@link rotate} (`deleteLog`), `0` for a
 *   log that was never reset. Nothing is written for a log that is only read or appended
 *   to, so clients joining rooms cannot grow the bucket, and the epoch a joiner of an empty
 *   room gets is the one its first event is appended under;
 * - the incarnation is the stream's creation time, so a stream created again (a server
 *   that lost its store) is a new epoch and no client resumes old positions against it.
 */
export class NatsEpochs {
  private readonly logEpochs = new Map<string, string>();
  /** Per stream: when it last answered a `streamHead` (reads, tails and takeovers all ask). */
  private readonly answered = new Map<string, number>();
  private readonly incarnations = new Map<string, string>();

  constructor(
    private readonly names: NatsNames,
    private readonly clients: () => NatsClients,
    private readonly bucket: () => KV,
  ) {}

  /** A stream's creation time: cached for appends; `fresh` asks the server (reads, tails). */
  async incarnationOf(stream: string, fresh = false): Promise<string> {
    const cached = this.incarnations.get(stream);
    if (cached && !fresh) return cached;
    return (await this.streamHead(stream)).incarnation;
  }

  /** When (performance.now()) the stream last answered {@link streamHead}, here. */
  answeredAt(stream: string): number | undefined {
    return this.answered.get(stream);
  }

  /** A stream's creation time, its first and last sequences and its per-room limit, asked afresh (one request). */
  async streamHead(stream: string): Promise<StreamHead> {
    const { jsm, nats } = this.clients();
    try {
      const info = await jsm.streams.info(stream);
      const incarnation = Date.parse(info.created).toString(36);
      this.incarnations.set(stream, incarnation);
      this.answered.set(stream, performance.now());
      return {
        incarnation,
        firstSeq: info.state.first_seq,
        lastSeq: info.state.last_seq,
        maxPerSubject: info.config.max_msgs_per_subject,
      };
    } catch (error) {
      throw unavailable(nats, error);
    }
  }

  /** The stream's creation time if this instance knows it, without asking. */
  cachedIncarnation(stream: string): string | undefined {
    return this.incarnations.get(stream);
  }

  /** The log's own epoch if cached (see {@link logEpoch}), without asking. */
  cachedLogEpoch(log: GeoLogRef): string | undefined {
    return this.logEpochs.get(this.names.logKey(log));
  }

  /** The log's own epoch: its KV entry, or `0`. The watcher keeps the cache current. */
  async logEpoch(log: GeoLogRef): Promise<string> {
    const key = this.names.logKey(log);
    const cached = this.logEpochs.get(key);
    if (cached) return cached;
    const bucket = this.bucket();
    const { nats } = this.clients();
    try {
      const entry = await bucket.get(key);
      const epoch = entry?.operation === 'PUT' && entry.length > 0 ? entry.string() : INITIAL_LOG_EPOCH;
      // A rotation the watcher delivered meanwhile is newer than what we read.
      if (!this.logEpochs.has(key)) remember(this.logEpochs, key, epoch);
      return this.logEpochs.get(key) ?? epoch;
    } catch (error) {
      throw unavailable(nats, error);
    }
  }

  /** Gives a log a new epoch (`deleteLog`), before its events are purged. */
  async rotate(log: GeoLogRef): Promise<void> {
    const key = this.names.logKey(log);
    const bucket = this.bucket();
    const { nats } = this.clients();
    const epoch = randomUUID();
    await bucket.put(key, epoch).catch((error: unknown) => {
      throw unavailable(nats, error);
    });
    remember(this.logEpochs, key, epoch);
  }

  /**
   * Follows rotations made anywhere (another region's `deleteLog`): keeps the cache
   * current and calls `onRotated` with the log key and its new epoch. Returns the stop.
   */
  async watch(bucket: KV, onRotated: (key: string, epoch: string) => void): Promise<() => void> {
    const { nats } = this.clients();
    const watcher = await bucket.watch({ include: nats.kv.KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const entry of watcher) {
        if (entry.operation !== 'PUT') continue;
        const epoch = entry.string();
        remember(this.logEpochs, entry.key, epoch);
        onRotated(entry.key, epoch);
      }
    })().catch(() => undefined);
    return () => watcher.stop();
  }
}

/** A full epoch from a log epoch and a stream incarnation. */
export function joinEpoch(logEpoch: string, incarnation: string): string {
  return `${logEpoch}.${incarnation}`;
}

/** The log epoch part of a full epoch. */
export function logEpochOf(epoch: string): string {
  return epoch.slice(0, epoch.lastIndexOf('.'));
}

/** Whether a message's epoch header is the log's: its own epoch, or the full epoch older versions wrote. */
export function ofEpoch(header: string | undefined, epoch: string): boolean {
  return header === logEpochOf(epoch) || header === epoch;
}

/** A full epoch from a message's header and the full epoch of the stream it is in. */
export function fullEpoch(header: string, current: string): string {
  return header.includes('.') ? header : joinEpoch(header, current.slice(current.lastIndexOf('.') + 1));
}

/** Adds to a bounded cache, dropping its oldest entry past {@link CACHE_LIMIT}. */
function remember<K, V>(cache: Map<K, V>, key: K, value: V): void {
  cache.delete(key);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as K);
  cache.set(key, value);
}
