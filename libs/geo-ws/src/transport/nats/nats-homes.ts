import { Logger } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import type { GeoLogRef } from '../log-ref.js';
import type { GeoRoomHome } from '../room-home.js';
import type { NatsClients } from './load-nats.js';
import type { NatsEpochs } from './nats-epochs.js';
import { isApiError, unavailable } from './nats-errors.js';
import type { NatsLogRef, NatsNames, NatsRoomHome } from './nats-names.js';

/**
 * A room's home stream is not the one its record names (created again since): thrown by
 * reads, caught by the transport, which renews the record and reads again.
 */
export class HomeStreamReplacedError extends GeoTransportUnavailableError {
  constructor(
    readonly log: NatsLogRef,
    readonly incarnation: string,
  ) {
    super(`the home stream of room "${log.room}" was created again`);
  }
}

/** A position in a room's log, raised to its start for a homed room: positions before it precede its first event. */
export function fromRoomStart(log: NatsLogRef, afterSeq: number): number {
  return log.home ? Math.max(afterSeq, log.home.startSeq) : afterSeq;
}

/** Homes cached per instance stay below this many rooms (an evicted one is read again). */
const CACHE_LIMIT = 10_000;
/** The epoch part of a room in its first generation, and of a room with no home yet: the same, so placing it changes no epoch. */
export function generationPart(generation: number): string {
  return `g${generation}`;
}

/**
 * Room homes (`roomHomes`): which region's stream holds each global room's log, recorded
 * in a KV bucket, one key per room, written once by the first append (a create, so the
 * first one to reach the bucket wins and racing regions follow it) and changed only when
 * the home stream is found created again (its generation goes up, and with it the room's
 * epoch). Rooms that are only read or joined get no record.
 *
 * A room's epoch is `<log epoch>.g<generation>`, not the stream's creation time as without
 * homes: a room with no home yet answers reads under generation 0, the one its first
 * append starts, so members who joined an empty room keep their positions when it gets a
 * home.
 */
export class NatsHomes {
  private readonly logger = new Logger(NatsHomes.name);
  private readonly cache = new Map<string, NatsRoomHome>();
  /** Per log key and region: the placement under way (see {@link place}). */
  private readonly placing = new Map<string, Promise<NatsLogRef>>();
  /** Per region: its home stream, once made sure of. */
  private readonly homeStreams = new Map<string, Promise<void>>();
  /** Per log key: called with each record the instance learns (tails waiting for a home or following moves). */
  private readonly listeners = new Map<string, Set<(home: NatsRoomHome) => void>>();
  /** The last bucket revision the watcher applied to the cache. */
  private applied = 0;
  /**
   * Until when (performance.now()) the cache is known to hold every record as it was at
   * some moment after `freshUntil - LEASE_MS`: see {@link isFresh}.
   */
  private freshUntil = 0;
  /** Since when (performance.now()) the cache has been fresh without a lapse. */
  private freshSince = 0;
  /**
   * Per log key of a room whose move this instance saw begin: until when an append acked
   * in its old segment was surely stored before the seal (see {@link fenceOf}).
   */
  private readonly fences = new Map<string, number>();
  /** Resolves waiters for {@link applied} to reach a revision. */
  private readonly appliedWaiters = new Set<() => void>();

  constructor(
    private readonly names: NatsNames,
    private readonly clients: () => NatsClients,
    private readonly bucket: () => KV,
    private readonly epochs: NatsEpochs,
    /** Makes sure a region's home stream exists (placing a room in a region that never booted). */
    private readonly ensureHomeStream: (region: string) => Promise<void>,
    /** Called when a cached room gets a newer generation (a takeover or a lost home stream): its tails' epoch ends. */
    private readonly onNewGeneration: (key: string, generation: number) => void = () => undefined,
  ) {}

  /** The log with its home when this instance knows it, without asking; regional logs as they are. */
  cached(log: GeoLogRef): NatsLogRef | undefined {
    if (log.scope === 'regional') return log;
    const home = this.cache.get(this.names.logKey(log));
    return home ? { ...log, home } : undefined;
  }

  /** The log with its home, asked of the bucket if not cached; without one (`home` unset) for a room nobody appended to. */
  async locate(log: GeoLogRef): Promise<NatsLogRef> {
    const known = this.cached(log);
    if (known) return known;
    const home = await this.read(this.names.logKey(log));
    return home ? { ...log, home } : log;
  }

  /**
   * The log with its home, placing the room in `region` if it has none. Not cached here:
   * the create is tried at once (it fails if the room has a home), so a room's first
   * append waits for one round trip to the bucket, not two.
   */
  place(log: GeoLogRef, region: string): Promise<NatsLogRef> {
    const known = this.cached(log);
    if (known) return Promise.resolve(known);
    // One placement of a room in a region at a time per instance: a join's and a first append's share it.
    const key = `${this.names.logKey(log)} ${region}`;
    let placing = this.placing.get(key);
    if (!placing) {
      placing = this.create(log, region);
      this.placing.set(key, placing);
      const done = () => this.placing.delete(key);
      placing.then(done, done);
    }
    return placing;
  }

  private async create(log: GeoLogRef, region: string): Promise<NatsLogRef> {
    // Read before the record exists: no event of the room can be in the stream yet.
    await this.homeStreamReady(region);
    const stream = await this.epochs.streamHead(this.names.homeStream(region));
    const home: NatsRoomHome = { region, term: 1, generation: 0, incarnation: stream.incarnation, startSeq: stream.lastSeq };
    const key = this.names.logKey(log);
    const { nats } = this.clients();
    try {
      await this.bucket().create(key, JSON.stringify(home));
      this.settled(key, home);
      this.logger.debug(`room "${log.room}" placed in ${region}`);
      return { ...log, home };
    } catch (error) {
      // Another instance or region placed it first: follow its record.
      const winner = await this.read(key);
      if (winner) return { ...log, home: winner };
      throw unavailable(nats, error);
    }
  }

  /**
   * The room's home stream was created again since its record was written (its store was
   * lost): the room starts a new generation, so its epoch changes and no member resumes a
   * position of the lost stream against the new one. Idempotent: instances noticing it
   * together agree on one new generation.
   */
  async renew(log: NatsLogRef, incarnation: string): Promise<NatsLogRef> {
    const key = this.names.logKey(log);
    const { nats } = this.clients();
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.bucket()
        .get(key)
        .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
      const current = entry?.operation === 'PUT' ? parseHome(entry.string()) : undefined;
      if (!current) return log;
      if (current.incarnation === incarnation) {
        this.settled(key, current);
        return { ...log, home: current };
      }
      // The stream was created again: its sequences start over, and any may be the room's.
      // Earlier segments belong to the old generation's epoch: nobody resumes into them.
      const next: NatsRoomHome = { ...current, generation: current.generation + 1, incarnation, startSeq: 0, past: undefined };
      try {
        await this.bucket().update(key, JSON.stringify(next), entry!.revision);
        this.settled(key, next);
        this.logger.warn(`the home stream of room "${log.room}" was created again (its store was lost): the room starts a new epoch`);
        return { ...log, home: next };
      } catch (error) {
        if (!isApiError(nats, error, WRONG_LAST_SEQUENCE)) throw unavailable(nats, error);
        // Someone else renewed it first: read theirs.
      }
    }
    throw unavailable(nats, new Error(`the home of room "${log.room}" kept changing`));
  }

  /** A region's home stream, made sure of once per region and process. */
  homeStreamReady(region: string): Promise<void> {
    let ready = this.homeStreams.get(region);
    if (!ready) {
      ready = this.ensureHomeStream(region);
      this.homeStreams.set(region, ready);
      ready.catch(() => this.homeStreams.delete(region));
    }
    return ready;
  }

  /** What `GET /geo/rooms/:room` says. */
  async home(log: GeoLogRef): Promise<GeoRoomHome> {
    const { home } = await this.locate(log);
    return { room: log.room, region: home?.region ?? null, term: home?.term ?? 0, placement: 'per-room' };
  }

  /**
   * Calls `onPlaced` once the room gets a home (at once if it has one). Returns the stop.
   * Used by tails of rooms with no home yet: they start reading the home stream then.
   */
  whenPlaced(log: GeoLogRef, onPlaced: (located: NatsLogRef) => void): () => void {
    const stop = this.follow(log, (located) => {
      stop();
      onPlaced(located);
    });
    return stop;
  }

  /**
   * Calls `onRecord` with each record of the room this instance learns (from the watcher,
   * or any read), starting with one asked now. Returns the stop. Tails follow moves by it.
   */
  follow(log: GeoLogRef, onRecord: (located: NatsLogRef) => void): () => void {
    const key = this.names.logKey(log);
    const listeners = this.listeners.get(key) ?? new Set<(home: NatsRoomHome) => void>();
    const listener = (home: NatsRoomHome) => onRecord({ ...log, home });
    listeners.add(listener);
    this.listeners.set(key, listeners);
    const stop = () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.listeners.get(key) === listeners) this.listeners.delete(key);
    };
    // Registered first, then asked (a read that finds a record wakes the listeners): a
    // change between the two is seen by one of them.
    void this.read(key).catch(() => undefined);
    return stop;
  }

  /**
   * The room's first record this instance holds or learns (a read included) that
   * `accepts`; `undefined` once `timeoutMs` passed without one.
   */
  recordWhere(
    log: GeoLogRef,
    accepts: (home: NatsRoomHome) => boolean,
    timeoutMs: number,
  ): Promise<(NatsLogRef & { home: NatsRoomHome }) | undefined> {
    const cached = this.cached(log);
    if (cached?.home && accepts(cached.home)) return Promise.resolve({ ...cached, home: cached.home });
    return new Promise((resolve) => {
      let stop = (): void => undefined;
      const finish = (found: (NatsLogRef & { home: NatsRoomHome }) | undefined) => {
        clearTimeout(timer);
        stop();
        resolve(found);
      };
      const timer = setTimeout(() => finish(undefined), Math.max(0, timeoutMs));
      stop = this.follow(log, (located) => {
        if (accepts(located.home!)) finish({ ...located, home: located.home! });
      });
    });
  }

  /** After a reconnect the watcher may have missed changes: the rooms followed ask again. */
  recheckWaiting(): void {
    for (const key of [...this.listeners.keys()]) void this.read(key).catch(() => undefined);
  }

  /**
   * Follows placements, moves and renewals made anywhere, from the bucket's revision when
   * it starts (so {@link applied} says how far the cache is), and keeps the cache's
   * freshness (see {@link isFresh}). Returns the stop.
   */
  async watch(): Promise<() => void> {
    const status = await this.bucket().status();
    this.applied = status.streamInfo.state.last_seq;
    const watcher = await this.bucket().watch({ resumeFromRevision: this.applied + 1 });
    void (async () => {
      for await (const entry of watcher) {
        const home = entry.operation === 'PUT' ? parseHome(entry.string()) : undefined;
        if (home) this.settled(entry.key, home);
        this.applied = Math.max(this.applied, entry.revision);
        for (const waiter of [...this.appliedWaiters]) waiter();
      }
    })().catch(() => undefined);
    const probe = setInterval(() => void this.probe(), PROBE_EVERY_MS);
    probe.unref();
    void this.probe();
    return () => {
      clearInterval(probe);
      watcher.stop();
    };
  }

  /**
   * True while the cache is known to hold every record as it was at some moment less
   * than {@link LEASE_MS} ago. An append acked now to a room the cache shows with no move
   * under way was stored before any seal: a move waits `LEASE_MS` after recording itself
   * before it seals (see `NatsMoves`).
   */
  isFresh(now = performance.now()): boolean {
    return now < this.freshUntil;
  }

  /** How long the cache has been fresh without a lapse (0 when it is not fresh now). */
  freshFor(now = performance.now()): number {
    return this.isFresh(now) ? now - this.freshSince : 0;
  }

  /**
   * For a room the cache shows moving: until when (performance.now()) an append acked in
   * the segment being sealed was stored before the seal, without asking. The freshness
   * in force when this instance first saw the move came from a check that completed
   * before the move was applied here, so it vouched for a moment the room was not moving:
   * the move was recorded after it, and the seal comes a lease after that. 0 when unknown.
   */
  fenceOf(log: GeoLogRef): number {
    return this.fences.get(this.names.logKey(log)) ?? 0;
  }

  /**
   * One freshness check: the bucket's last revision, asked now, then the watcher reaching
   * it. Failures only let the freshness lapse (appends are then confirmed one by one).
   */
  private async probe(): Promise<void> {
    const askedAt = performance.now();
    try {
      const status = await this.bucket().status();
      const target = status.streamInfo.state.last_seq;
      if (this.applied < target) await this.appliedReaches(target, LEASE_MS);
      if (this.applied >= target) {
        if (!this.isFresh(askedAt)) this.freshSince = performance.now(); // a lapse ends here
        this.freshUntil = Math.max(this.freshUntil, askedAt + LEASE_MS);
      }
    } catch {
      // Not connected, or the bucket's region is unreachable: the freshness lapses.
    }
  }

  private appliedReaches(revision: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.applied < revision && !timedOut) return;
        clearTimeout(timer);
        this.appliedWaiters.delete(done);
        resolve();
      };
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        done();
      }, timeoutMs);
      this.appliedWaiters.add(done);
    });
  }

  /** The room's record as the bucket holds it now, with its revision (for a compare-and-set). */
  async fetch(log: GeoLogRef): Promise<{ home: NatsRoomHome; revision: number } | undefined> {
    const key = this.names.logKey(log);
    const { nats } = this.clients();
    const entry = await this.bucket()
      .get(key)
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    const home = entry?.operation === 'PUT' ? parseHome(entry.string()) : undefined;
    if (!home) return undefined;
    this.settled(key, home);
    return { home, revision: entry!.revision };
  }

  /**
   * Replaces the room's record if it is still at `revision`; resolves with the record's new
   * revision, or `undefined` when another instance changed it first (the caller reads it again).
   */
  async replace(log: GeoLogRef, home: NatsRoomHome, revision: number): Promise<number | undefined> {
    const key = this.names.logKey(log);
    const { nats } = this.clients();
    let next: number;
    try {
      next = await this.bucket().update(key, JSON.stringify(home), revision);
    } catch (error) {
      if (isApiError(nats, error, WRONG_LAST_SEQUENCE)) return undefined;
      throw unavailable(nats, error);
    }
    this.settled(key, home);
    return next;
  }

  /** The room's record, asked of the bucket; one found is cached and wakes the room's waiting tails. */
  private async read(key: string): Promise<NatsRoomHome | undefined> {
    const { nats } = this.clients();
    const entry = await this.bucket()
      .get(key)
      .catch((error: unknown) => Promise.reject(unavailable(nats, error)));
    const home = entry?.operation === 'PUT' ? parseHome(entry.string()) : undefined;
    if (home) this.settled(key, home);
    return home;
  }

  /**
   * Caches a record (never one older than the cached one: a newer generation, term or
   * step of a move wins) and wakes the room's listeners.
   */
  private settled(key: string, home: NatsRoomHome): void {
    const cached = this.cache.get(key);
    if (cached && home.moving && !cached.moving && cached.term === home.term && cached.generation === home.generation) {
      // The move begins now for this instance: see fenceOf.
      if (this.fences.size >= CACHE_LIMIT) this.fences.delete(this.fences.keys().next().value as string);
      this.fences.set(key, this.freshUntil);
    } else if (!home.moving) {
      this.fences.delete(key);
    }
    if (cached && home.generation > cached.generation) this.onNewGeneration(key, home.generation);
    if (!cached || !isOlder(home, cached)) {
      this.cache.delete(key);
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, home);
    }
    for (const listener of [...(this.listeners.get(key) ?? [])]) listener(this.cache.get(key)!);
  }
}

/** Whether record `a` precedes record `b` of the same room. */
function isOlder(a: NatsRoomHome, b: NatsRoomHome): boolean {
  if (a.generation !== b.generation) return a.generation < b.generation;
  if (a.term !== b.term) return a.term < b.term;
  return !a.moving && !!b.moving;
}

/**
 * How long a freshness check vouches for the cache (see {@link NatsHomes.isFresh}), and so
 * how long a move waits between recording itself and sealing the old segment.
 */
export const LEASE_MS = 1000;
/** Extra wait after a lease before acting on its end: covers clock-rate drift and timer lateness between instances. */
export const LEASE_MARGIN_MS = 100;
/** How often the cache's freshness is checked: several checks per lease, so one slow answer does not let it lapse. */
const PROBE_EVERY_MS = 250;

/** JetStream's "wrong last sequence": a KV update lost its race. */
const WRONG_LAST_SEQUENCE = 10071;

function parseHome(text: string): NatsRoomHome | undefined {
  try {
    const value = JSON.parse(text) as Partial<NatsRoomHome>;
    if (typeof value.region !== 'string' || typeof value.term !== 'number') return undefined;
    return {
      region: value.region,
      term: value.term,
      generation: typeof value.generation === 'number' ? value.generation : 0,
      incarnation: typeof value.incarnation === 'string' ? value.incarnation : '',
      startSeq: typeof value.startSeq === 'number' ? value.startSeq : 0,
      ...(value.moving ? { moving: value.moving } : {}),
      ...(typeof value.takenOverAt === 'number' ? { takenOverAt: value.takenOverAt } : {}),
      ...(Array.isArray(value.past) ? { past: value.past } : {}),
    };
  } catch {
    return undefined;
  }
}
