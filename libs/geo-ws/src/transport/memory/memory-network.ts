import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import { logKey, type GeoLogRef } from '../log-ref.js';
import type { GeoRoomHome } from '../room-home.js';
import { randomUUID } from 'node:crypto';
import { MemoryStateStore } from './memory-state.store.js';

/** Options of the simulated network shared by the regions of one process. */
export interface GeoMemoryNetworkOptions {
  /**
   * The region whose "broker" holds every global log (`placement: 'fixed'`). Default: none,
   * each room's log lives in its own home region, chosen by its first append (the
   * module's `placement`). Appends from other regions pay a round trip to the home, and
   * their live tails one trip from it.
   */
  home?: string;
  /**
   * One-way delay between two regions, in milliseconds: a number for every pair, or a
   * function. Default 0.
   * @example delayMs: (from, to) => (from === to ? 0 : 40)
   */
  delayMs?: number | ((from: string, to: string) => number);
}

interface StoredEvent {
  event: GeoLoggedEnvelope;
  storedAt: number;
}

/** One log incarnation held by the network. */
export class MemoryLog {
  readonly events: StoredEvent[] = [];
  lastSeq = 0;
  private readonly dedup = new Map<string, { seq: number; expiresAt: number }>();
  private readonly listeners = new Set<(event: GeoLoggedEnvelope) => void>();
  private readonly deletionListeners = new Set<() => void>();

  constructor(
    readonly epoch: string,
    private readonly dedupWindowMs: number,
    private readonly retention: { maxEvents: number; maxAgeMs: number },
    /** Called when the log holds nothing and nobody listens (the network may drop it). */
    private readonly onIdle: (log: MemoryLog) => void = () => undefined,
  ) {}

  get firstSeq(): number {
    this.trim();
    return this.events[0]?.event.seq ?? this.lastSeq + 1;
  }

  append(draft: GeoEnvelopeDraft): { seq: number; duplicate: boolean } {
    const now = Date.now();
    this.forgetExpiredIds(now);
    const known = this.dedup.get(draft.event_id);
    if (known) return { seq: known.seq, duplicate: true };
    const event: GeoLoggedEnvelope = { ...draft, seq: ++this.lastSeq };
    this.events.push({ event, storedAt: now });
    this.dedup.set(draft.event_id, { seq: event.seq, expiresAt: now + this.dedupWindowMs });
    this.trim(now);
    for (const listener of this.listeners) listener(event);
    return { seq: event.seq, duplicate: false };
  }

  /** Events with `seq > afterSeq`, and whether retention removed some of them. */
  after(afterSeq: number, limit = Infinity): { events: GeoLoggedEnvelope[]; truncated: boolean } {
    this.trim();
    const first = this.firstSeq;
    const start = Math.max(afterSeq + 1, first);
    const index = this.events.length === 0 ? 0 : start - this.events[0].event.seq;
    const events = this.events.slice(index, index + limit).map((stored) => stored.event);
    return { events, truncated: afterSeq + 1 < first };
  }

  listen(listener: (event: GeoLoggedEnvelope) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      this.checkIdle();
    };
  }

  /** Called once if this incarnation is deleted (its tails must not wait forever). */
  onDeleted(listener: () => void): () => void {
    this.deletionListeners.add(listener);
    return () => {
      this.deletionListeners.delete(listener);
      this.checkIdle();
    };
  }

  private checkIdle(): void {
    if (this.lastSeq === 0 && this.listeners.size === 0 && this.deletionListeners.size === 0) this.onIdle(this);
  }

  /** @internal */
  markDeleted(): void {
    this.listeners.clear();
    for (const listener of [...this.deletionListeners]) listener();
    this.deletionListeners.clear();
  }

  private trim(now = Date.now()): void {
    const { maxEvents, maxAgeMs } = this.retention;
    let drop = Math.max(0, this.events.length - maxEvents);
    while (drop < this.events.length && now - this.events[drop].storedAt > maxAgeMs) drop++;
    if (drop > 0) this.events.splice(0, drop);
  }

  private forgetExpiredIds(now: number): void {
    // Map iteration follows insertion order, which is expiry order: stop at the first live id.
    for (const [id, entry] of this.dedup) {
      if (entry.expiresAt > now) break;
      this.dedup.delete(id);
    }
  }
}

/**
 * The in-process "broker" shared by every region of one process: it holds the logs and
 * simulates the delay between regions. Give the same instance to every region's
 * `memoryTransport({ network })`; each app then sees the others as remote regions.
 */
export class GeoMemoryNetwork {
  /** Part of every epoch: logs of another network (another process) are other incarnations. */
  private readonly id = randomUUID();
  /** Logs that have events or live tails; a log only read is not kept (any client can read rooms). */
  private readonly logs = new Map<string, MemoryLog>();
  /** How many times a log was deleted: its next incarnation's epoch. Only `deleteLog` adds here. */
  private readonly deletions = new Map<string, number>();
  private readonly ephemeralListeners = new Map<string, Set<(envelope: GeoEnvelopeDraft) => void>>();
  private readonly isolated = new Set<string>();
  private readonly isolationListeners = new Set<(region: string, isolated: boolean) => void>();
  /** Home region and fencing term of each global room that had an event (per-room placement). */
  private readonly homes = new Map<string, { region: string; term: number }>();
  private readonly home: string | undefined;
  /** Sessions, revocations and presence shared by the regions of this network. */
  readonly state = new MemoryStateStore();

  constructor(private readonly options: GeoMemoryNetworkOptions = {}) {
    this.home = options.home;
  }

  /**
   * The region that holds `log`: its own region for regional logs, the room's home for
   * global ones; `from` for a room with no home yet (it has nothing to read).
   */
  homeOf(log: GeoLogRef, from: string): string {
    if (log.scope === 'regional') return log.region;
    return this.home ?? this.homes.get(log.room)?.region ?? from;
  }

  /** The home of `log`, placing a global room in `chosen` if it has none: the first append decides. */
  place(log: GeoLogRef, chosen: string): string {
    if (log.scope === 'regional') return log.region;
    if (this.home) return this.home;
    const home = this.homes.get(log.room);
    if (home) return home.region;
    this.homes.set(log.room, { region: chosen, term: 1 });
    return chosen;
  }

  /**
   * Moves a global room's log to `region` under the next term. The simulated broker holds
   * one log per room whatever its home, so nothing in flight is lost or reordered; what
   * changes is which region pays the round trips.
   */
  move(room: string, region: string): GeoRoomHome {
    const home = this.homes.get(room);
    if (!home) this.homes.set(room, { region, term: 1 });
    else if (home.region !== region) this.homes.set(room, { region, term: home.term + 1 });
    return this.roomHome(room);
  }

  /** `fixed` with the option `home` (every global log there), `per-room` otherwise. */
  get placement(): GeoRoomHome['placement'] {
    return this.home ? 'fixed' : 'per-room';
  }

  roomHome(room: string): GeoRoomHome {
    if (this.home) return { room, region: this.home, term: 1, placement: 'fixed' };
    const home = this.homes.get(room);
    return { room, region: home?.region ?? null, term: home?.term ?? 0, placement: 'per-room' };
  }

  delay(from: string, to: string): number {
    const { delayMs = 0 } = this.options;
    if (from === to) return 0;
    return typeof delayMs === 'number' ? delayMs : delayMs(from, to);
  }

  /**
   * The current incarnation of `log`. Appends and tails keep it (`keep`); a read of a log
   * that has neither gets an empty one that is not kept, with the same epoch, so reading
   * rooms cannot grow the process and the epoch a reader saw is the one events get.
   */
  log(log: GeoLogRef, dedupWindowMs: number, retention: { maxEvents: number; maxAgeMs: number }, keep = true): MemoryLog {
    const key = logKey(log);
    const stored = this.logs.get(key);
    if (stored) return stored;
    const fresh = new MemoryLog(`${this.id}.${this.deletions.get(key) ?? 0}`, dedupWindowMs, retention, (idle) => {
      if (this.logs.get(key) === idle) this.logs.delete(key);
    });
    if (keep) this.logs.set(key, fresh);
    return fresh;
  }

  deleteLog(log: GeoLogRef): void {
    const key = logKey(log);
    const stored = this.logs.get(key);
    this.logs.delete(key);
    this.deletions.set(key, (this.deletions.get(key) ?? 0) + 1);
    stored?.markDeleted();
  }

  publishEphemeral(log: GeoLogRef, envelope: GeoEnvelopeDraft): void {
    for (const listener of this.ephemeralListeners.get(logKey(log)) ?? []) listener(envelope);
  }

  listenEphemeral(log: GeoLogRef, listener: (envelope: GeoEnvelopeDraft) => void): () => void {
    const key = logKey(log);
    const listeners = this.ephemeralListeners.get(key) ?? new Set();
    listeners.add(listener);
    this.ephemeralListeners.set(key, listeners);
    return () => listeners.delete(listener);
  }

  /**
   * Cuts `region` off: its appends and reads fail as unavailable and its live tails stop
   * receiving until `heal(region)`, when they resume without loss. For fault tests.
   */
  isolate(region: string): void {
    this.isolated.add(region);
    for (const listener of this.isolationListeners) listener(region, true);
  }

  heal(region: string): void {
    this.isolated.delete(region);
    for (const listener of this.isolationListeners) listener(region, false);
  }

  isIsolated(region: string): boolean {
    return this.isolated.has(region);
  }

  /** @internal */
  onIsolationChange(listener: (region: string, isolated: boolean) => void): () => void {
    this.isolationListeners.add(listener);
    return () => this.isolationListeners.delete(listener);
  }
}
