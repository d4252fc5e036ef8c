import type { GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoSubscription } from '../geo-transport.interface.js';

/** What a tail needs of the reader that feeds it. */
export interface TailOwner {
  remove(tail: StreamTail): void;
}

/**
 * One live tail: a log's stream key, where it is, where its events go; also the handle the
 * transport returns. A class with its fields rather than an object of closures: a node may
 * tail tens of thousands of rooms, each with one tail (about 0.3 KB less per room).
 */
export class StreamTail implements GeoSubscription {
  /** When the periodic check next extends its log's meta (epoch ms; see `RedisTransport`). */
  extendAt = 0;
  private stopped = false;

  constructor(
    readonly key: string,
    /** Last seq delivered. */
    public cursor: number,
    /**
     * The log's own epoch (its meta hash's), which the append script stamps on every entry.
     * The dataset's part of the full epoch is the transport's: when it changes, every tail fails.
     */
    readonly logEpoch: string,
    readonly onEvent: (event: GeoLoggedEnvelope) => void,
    private readonly onError: ((error: Error) => void) | undefined,
    private readonly owner: TailOwner,
  ) {}

  /** The tail cannot go on: it stops and says why, once. */
  fail(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.onError?.(new GeoTransportUnavailableError(reason));
  }

  close(): Promise<void> {
    this.stop();
    return Promise.resolve();
  }

  private stop(): void {
    this.stopped = true;
    this.owner.remove(this);
  }
}

/**
 * Tails by stream key. A key's one tail is held as it is (one feed per log and node is the
 * usual case); a `Set` is made only for a second one.
 */
export class TailIndex {
  private readonly byKey = new Map<string, StreamTail | Set<StreamTail>>();

  /** Keys with at least one tail. */
  get size(): number {
    return this.byKey.size;
  }

  /** Adds a tail; true when its key had none. */
  add(tail: StreamTail): boolean {
    const held = this.byKey.get(tail.key);
    if (!held) this.byKey.set(tail.key, tail);
    else if (held instanceof Set) held.add(tail);
    else if (held !== tail) this.byKey.set(tail.key, new Set([held, tail]));
    return held === undefined;
  }

  /** Removes a tail; true when its key has none left. */
  remove(tail: StreamTail): boolean {
    const held = this.byKey.get(tail.key);
    if (held === tail) this.byKey.delete(tail.key);
    else if (held instanceof Set) {
      held.delete(tail);
      if (held.size === 1) this.byKey.set(tail.key, held.values().next().value!);
    }
    return !this.byKey.has(tail.key);
  }

  /** The tails of one key, in a new array (failing a tail removes it from the index). */
  of(key: string): StreamTail[] {
    const held = this.byKey.get(key);
    return held === undefined ? [] : held instanceof Set ? [...held] : [held];
  }

  /** Every tail, in a new array. */
  all(): StreamTail[] {
    const found: StreamTail[] = [];
    for (const held of this.byKey.values()) {
      if (held instanceof Set) found.push(...held);
      else found.push(held);
    }
    return found;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  /** Each key with the lowest cursor of its tails: where a read of it starts. */
  *cursors(): Generator<[key: string, cursor: number]> {
    for (const [key, held] of this.byKey) {
      if (!(held instanceof Set)) yield [key, held.cursor];
      else {
        let from = Infinity;
        for (const tail of held) from = Math.min(from, tail.cursor);
        yield [key, from];
      }
    }
  }

  clear(): void {
    this.byKey.clear();
  }
}
