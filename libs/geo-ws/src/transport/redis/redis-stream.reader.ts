import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { TailIndex, type StreamTail, type TailOwner } from './redis-tails.js';

/** A blocking connection and a command connection to the same server (to unblock it). */
export interface ReadSource {
  blocking: Redis;
  command: Redis;
  /** The blocking connection's `CLIENT ID` (cached until it reconnects). */
  blockingId(): Promise<number>;
  /** The replication id the server serves its data under now (its primary's, on a replica). */
  replicationId(): Promise<string>;
  /**
   * A blocking `XREAD` of these streams, and the replication id the server serves its data
   * under right after it (pipelined on the blocking connection: one write, one round trip).
   */
  readLive(keys: string[], ids: string[]): Promise<{ reply: StreamReply; replicationId: string }>;
  /** The replication id the dataset was last checked under: entries read under another one are not delivered. */
  checkedReplicationId(): string;
  /** Entries were read under another replication id: the dataset must be checked (restart, failover). */
  recheck(): void;
  /** Entries written up to this count were read under this replication id (see `RedisDataset`). */
  observe(replicationId: string, writes: number): void;
}

export type StreamEntries = [id: string, fields: string[]][];

/** An `XREAD` reply: entries by stream key, or null when the call timed out or was unblocked. */
export type StreamReply = [key: string, entries: StreamEntries][] | null;

/** One stream entry: its event, the epoch of the log it was appended to and the dataset's write count then (absent on entries of older versions). */
export interface StampedEvent {
  event: GeoLoggedEnvelope;
  epoch: string | undefined;
  writes: number | undefined;
}

/** The value of a field of a stream entry (fields alternate name, value). */
function field(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** Parses stream entries written by the append script (`e` = envelope JSON, `g` = epoch, `w` = write count, id = `<seq>-0`). */
export function parseStamped(entries: StreamEntries): StampedEvent[] {
  return entries.map(([id, fields]) => {
    const writes = field(fields, 'w');
    return {
      event: { ...(JSON.parse(field(fields, 'e')!) as GeoEnvelopeDraft), seq: Number(id.split('-')[0]) },
      epoch: field(fields, 'g'),
      writes: writes === undefined ? undefined : Number(writes),
    };
  });
}

/** The events of stream entries. */
export function parseEntries(entries: StreamEntries): GeoLoggedEnvelope[] {
  return parseStamped(entries).map((entry) => entry.event);
}

/** The log's own part of a full epoch `<logEpoch>.<datasetId>`. */
export function logEpochOf(epoch: string): string {
  return epoch.slice(0, epoch.lastIndexOf('.'));
}

/** How a transport follows its tailed logs live. */
export interface LiveReader extends TailOwner {
  add(tail: StreamTail): void;
  remove(tail: StreamTail): void;
  /** The tails of one stream key, in a new array. */
  tailsOf(key: string): StreamTail[];
  /** Every tail, in a new array (failing a tail removes it from the reader). */
  all(): StreamTail[];
  close(): void;
}

/**
 * Hands events to a key's tails in seq order; seqs are gap-free, so a jump means lost
 * events. An entry stamped with another epoch belongs to a new incarnation of the log
 * (its primary lost the data and the counter started again): the tail fails before
 * delivering it, so no member receives an event under an epoch it does not belong to.
 */
export function deliverToTails(tails: StreamTail[], entries: StampedEvent[]): void {
  for (const tail of tails) {
    for (const { event, epoch } of entries) {
      if (event.seq <= tail.cursor) continue;
      if (epoch !== undefined && epoch !== tail.logEpoch) {
        tail.fail(`the log of room "${event.room_id}" was lost or reset: seq ${event.seq} belongs to another epoch`);
        break;
      }
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
  private readonly logger = new Logger(RedisStreamReader.name);
  private readonly tails = new TailIndex();
  private running = false;
  private closed = false;
  private wake: (() => void) | undefined;
  /** The blocked `XREAD`'s connection, and whether it was already told to return (one `CLIENT UNBLOCK` per read, however many tails join meanwhile). */
  private blockedOn: { source: ReadSource; id: number; unblocked: boolean } | undefined;

  constructor(
    /** Where to read now: the replica while it is healthy, else the primary. */
    private readonly source: () => ReadSource,
  ) {}

  add(tail: StreamTail): void {
    this.tails.add(tail);
    this.interrupt();
    if (!this.running) void this.run();
  }

  remove(tail: StreamTail): void {
    this.tails.remove(tail);
  }

  tailsOf(key: string): StreamTail[] {
    return this.tails.of(key);
  }

  all(): StreamTail[] {
    return this.tails.all();
  }

  close(): void {
    this.closed = true;
    this.tails.clear();
    this.interrupt();
  }

  private interrupt(): void {
    this.wake?.();
    const blocked = this.blockedOn;
    if (!blocked || blocked.unblocked) return;
    blocked.unblocked = true;
    void blocked.source.command.client('UNBLOCK', blocked.id).catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.running = true;
    let failures = 0;
    /** The source of the last read, and its replication id right after that read. */
    let last: { command: Redis; replicationId: string } | undefined;
    while (!this.closed) {
      if (this.tails.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      try {
        const source = this.source();
        const id = await source.blockingId();
        // A server serves its data under one replication id; a new one (a restarted primary,
        // a failover) may be another dataset, which must be checked before anything is delivered.
        const before = last?.command === source.command ? last.replicationId : await source.replicationId();
        const keys: string[] = [];
        const ids: string[] = [];
        for (const [key, from] of this.tails.cursors()) {
          keys.push(key);
          ids.push(`${from}-0`);
        }
        // From here on a tail added or removed unblocks the call (`interrupt`) and the next
        // turn builds it again.
        this.blockedOn = { source, id, unblocked: false };
        const { reply, replicationId: after } = await source.readLive(keys, ids);
        this.blockedOn = undefined;
        last = { command: source.command, replicationId: after };
        failures = 0;
        // Read while the id changed: the entries may be of either dataset, so read again.
        if (before !== after) continue;
        // A restarted or promoted primary (or a replica already serving its history): nothing
        // is delivered until the dataset is checked under it. If it kept every write this
        // process saw, the tails go on from their cursors; if not, its id changed and the
        // check fails them (a new epoch).
        if (after !== source.checkedReplicationId()) {
          source.recheck();
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        let writes = 0;
        for (const [key, entries] of reply ?? []) {
          const stamped = parseStamped(entries);
          for (const entry of stamped) writes = Math.max(writes, entry.writes ?? 0);
          deliverToTails(this.tails.of(key), stamped);
        }
        if (writes > 0) source.observe(after, writes);
      } catch (error) {
        this.blockedOn = undefined;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the awaits above; the compiler keeps the narrowing from the loop's condition
        if (this.closed) break;
        // The source died or lags: the next turn picks a source again, from the same cursors.
        this.logger.debug(`live reader: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** failures++)));
      }
    }
    this.running = false;
  }
}
