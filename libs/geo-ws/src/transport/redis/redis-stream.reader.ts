import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';

/** One live tail: a log's stream key, where it is, and where events go. */
export interface StreamTail {
  key: string;
  /** Last seq delivered. */
  cursor: number;
  epoch: string;
  onEvent(event: GeoLoggedEnvelope): void;
  fail(reason: string): void;
}

/** A blocking connection and a command connection to the same server (to unblock it). */
export interface ReadSource {
  blocking: Redis;
  command: Redis;
  /** The blocking connection's `CLIENT ID` (cached until it reconnects). */
  blockingId(): Promise<number>;
}

type StreamEntries = [id: string, fields: string[]][];

/** Parses stream entries written by the append script (`e` = envelope JSON, id = `<seq>-0`). */
export function parseEntries(entries: StreamEntries): GeoLoggedEnvelope[] {
  return entries.map(([id, fields]) => {
    const json = fields[fields.indexOf('e') + 1];
    return { ...(JSON.parse(json) as GeoEnvelopeDraft), seq: Number(id.split('-')[0]) };
  });
}

/** How a transport follows its tailed logs live. */
export interface LiveReader {
  add(tail: StreamTail): void;
  remove(tail: StreamTail): void;
  tailsOf(key: string): StreamTail[];
  all(): StreamTail[];
  close(): void;
}

/** Hands events to a key's tails in seq order; seqs are gap-free, so a jump means lost events. */
export function deliverToTails(tails: StreamTail[], events: GeoLoggedEnvelope[]): void {
  for (const tail of tails) {
    for (const event of events) {
      if (event.seq <= tail.cursor) continue;
      if (event.seq !== tail.cursor + 1) {
        tail.fail(`tail of room "${event.room_id}" lost events ${tail.cursor + 1}..${event.seq - 1} to retention`);
        break;
      }
      tail.cursor = event.seq;
      tail.onEvent(event);
    }
  }
}

/**
 * The node's single live reader over all of its rooms: one blocking `XREAD` on every
 * tailed stream at once, never a connection per client or per room. Adding a room
 * interrupts the blocked call (`CLIENT UNBLOCK`) so it is read at once.
 */
export class RedisStreamReader implements LiveReader {
  private readonly logger = new Logger('GeoWs');
  private readonly tails = new Map<string, Set<StreamTail>>();
  private running = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private blockedOn: { source: ReadSource; id: number } | undefined;
  /** Set when the tail set changed since the current XREAD was built. */
  private dirty = false;

  constructor(
    /** Where to read now: the replica while it is healthy, else the primary. */
    private readonly source: () => Promise<ReadSource>,
  ) {}

  add(tail: StreamTail): void {
    const tails = this.tails.get(tail.key) ?? new Set<StreamTail>();
    tails.add(tail);
    this.tails.set(tail.key, tails);
    this.interrupt();
    if (!this.running) void this.run();
  }

  remove(tail: StreamTail): void {
    const tails = this.tails.get(tail.key);
    tails?.delete(tail);
    if (tails?.size === 0) this.tails.delete(tail.key);
  }

  /** Tails of one stream key (to tell them their log was reset). */
  tailsOf(key: string): StreamTail[] {
    return [...(this.tails.get(key) ?? [])];
  }

  all(): StreamTail[] {
    return [...this.tails.values()].flatMap((tails) => [...tails]);
  }

  close(): void {
    this.closed = true;
    this.tails.clear();
    this.interrupt();
  }

  private interrupt(): void {
    this.dirty = true;
    this.wake?.();
    const blocked = this.blockedOn;
    if (blocked) void blocked.source.command.client('UNBLOCK', blocked.id).catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.running = true;
    let failures = 0;
    while (!this.closed) {
      if (this.tails.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      try {
        const source = await this.source();
        const id = await source.blockingId();
        this.dirty = false;
        const keys = [...this.tails.keys()];
        const ids = keys.map((key) => `${Math.min(...[...this.tails.get(key)!].map((tail) => tail.cursor))}-0`);
        this.blockedOn = { source, id };
        if (this.dirty) continue; // changed while we built the call: build it again
        const reply = (await source.blocking.xread('COUNT', 500, 'BLOCK', 2000, 'STREAMS', ...keys, ...ids)) as [string, StreamEntries][] | null;
        this.blockedOn = undefined;
        failures = 0;
        for (const [key, entries] of reply ?? []) deliverToTails(this.tailsOf(key), parseEntries(entries));
      } catch (error) {
        this.blockedOn = undefined;
        if (this.closed) break;
        // The source died or lags: the next turn picks a source again, from the same cursors.
        this.logger.debug(`live reader: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** failures++)));
      }
    }
    this.running = false;
  }
}
