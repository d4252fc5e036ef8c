import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { deliverToTails, parseStamped, type LiveReader, type StreamEntries } from './redis-stream.reader.js';
import { TailIndex, type StreamTail } from './redis-tails.js';

const PAGE = 500;
const SWEEP_MS = 1000;
/** Tailed logs the sweep reads per turn, in turn: its cost stays fixed whatever the number of rooms. */
const SWEEP_SLICE = 50;

/**
 * The live reader for Redis Cluster, where one `XREAD` cannot span slots: the append
 * script publishes a wake-up on the log's channel, and the reader, subscribed once per
 * tailed log on one connection, reads the new entries with `XRANGE` from its cursor.
 * Pub/Sub may drop a wake-up (a subscriber that reconnects misses what was published
 * meanwhile): every tailed log is read when the subscriber is back, and a sweep reads 50
 * tailed logs a second in turn. A dropped wake-up delays an event until the log's next
 * one, or its turn in the sweep. Entries are checked against each tail's epoch as in the
 * blocking reader (`deliverToTails`).
 */
export class RedisWakeReader implements LiveReader {
  private readonly logger = new Logger(RedisWakeReader.name);
  private readonly tails = new TailIndex();
  private readonly reading = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly sweep: NodeJS.Timeout;
  /** Wake-up channel → stream key. */
  private readonly keyOf = new Map<string, string>();
  /** Where the sweep goes on from. */
  private swept = 0;

  constructor(
    private readonly commands: () => Redis,
    private readonly subscriber: Redis,
    private readonly wakeChannel: (streamKey: string) => string,
  ) {
    subscriber.on('message', (channel: string) => {
      const key = this.keyOf.get(channel);
      if (key) this.read(key);
    });
    subscriber.on('ready', () => {
      for (const key of this.tails.keys()) this.read(key);
    });
    this.sweep = setInterval(() => this.sweepSlice(), SWEEP_MS);
    this.sweep.unref();
  }

  add(tail: StreamTail): void {
    if (this.tails.add(tail)) {
      const channel = this.wakeChannel(tail.key);
      this.keyOf.set(channel, tail.key);
      void this.subscriber.subscribe(channel).catch((error: unknown) => this.logger.warn(`wake-up channel: ${(error as Error).message}`));
    }
    this.read(tail.key); // the backlog after the tail's position
  }

  remove(tail: StreamTail): void {
    if (this.tails.remove(tail) && this.keyOf.delete(this.wakeChannel(tail.key))) {
      void this.subscriber.unsubscribe(this.wakeChannel(tail.key)).catch(() => undefined);
    }
  }

  tailsOf(key: string): StreamTail[] {
    return this.tails.of(key);
  }

  all(): StreamTail[] {
    return this.tails.all();
  }

  close(): void {
    clearInterval(this.sweep);
    this.tails.clear();
  }

  /** Reads the next {@link SWEEP_SLICE} tailed logs after the last one swept (in the map's order). */
  private sweepSlice(): void {
    const keys = [...this.tails.keys()];
    if (keys.length === 0) return;
    const start = this.swept % keys.length;
    for (let i = 0; i < Math.min(SWEEP_SLICE, keys.length); i++) this.read(keys[(start + i) % keys.length]);
    this.swept = start + SWEEP_SLICE;
  }

  /** Reads a log from its tails' cursor; one read per log at a time, another if woken meanwhile. */
  private read(key: string): void {
    if (this.reading.has(key)) {
      this.again.add(key);
      return;
    }
    const run = this.readAll(key)
      .catch((error: unknown) => this.logger.debug(`live read of ${key}: ${(error as Error).message}`))
      .finally(() => {
        this.reading.delete(key);
        if (this.again.delete(key) && this.tails.has(key)) this.read(key);
      });
    this.reading.set(key, run);
  }

  private async readAll(key: string): Promise<void> {
    for (;;) {
      const tails = this.tailsOf(key);
      if (tails.length === 0) return;
      const from = Math.min(...tails.map((tail) => tail.cursor)) + 1;
      const entries = (await this.commands().xrange(key, `${from}-0`, '+', 'COUNT', PAGE)) as StreamEntries;
      deliverToTails(tails, parseStamped(entries));
      if (entries.length < PAGE) return;
    }
  }
}
