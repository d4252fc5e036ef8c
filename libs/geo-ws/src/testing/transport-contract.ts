import { randomUUID } from 'node:crypto';
import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';
import { GeoTransportUnavailableError } from '../errors/geo-transport-unavailable.error.js';
import type { GeoTransport, GeoTransportContext, GeoTransportFactory, GeoSubscription } from '../transport/geo-transport.interface.js';
import { globalLog, regionalLog, type GeoLogRef } from '../transport/log-ref.js';
import { waitFor } from './wait-for.js';

/** One isolated deployment of the transport under test: its regions share logs. */
export interface GeoContractCluster {
  /** Builds one region's transport (not yet connected). */
  transport: GeoTransportFactory;
  /** Frees what the cluster holds (streams, keys, servers). */
  dispose?(): Promise<void>;
  /**
   * Makes the broker lose `log` the way a restart without its data does: nobody is told,
   * and the next append starts a new incarnation (for instance Redis keys deleted behind
   * the transport's back, a JetStream stream deleted and created again). Leave it out for
   * a transport whose broker cannot lose data apart from the process (memory).
   */
  loseLog?(log: GeoLogRef): Promise<void>;
}

/** Options of {@link describeTransportContract}: the clusters to test and what they promise. */
export interface GeoTransportContractOptions {
  /** A fresh cluster for one test. */
  newCluster(): GeoContractCluster | Promise<GeoContractCluster>;
  /** Region names; default asia, eu, us. */
  regions?: string[];
  /** Per-test timeout; raise it for transports with real network delay. Default 20 s. */
  timeoutMs?: number;
  /**
   * True when the transport numbers each log 1, 2, 3… with no gaps (memory, Redis). Every
   * transport must give strictly increasing seqs per log; NATS uses stream sequences,
   * which skip the numbers of other rooms' events. The transport's `contiguousSeq` must
   * say the same (the suite checks it).
   */
  gapFreeSeq?: boolean;
  /**
   * True when the transport places each global room's log in its own home region
   * (`home()` answers `placement: 'per-room'`): the first append places the room, in the
   * region `placeRoom` names. Default false (`fixed`: every log in one place).
   */
  roomHomes?: boolean;
  /**
   * The test framework's functions. Default: the globals Jest defines (and Vitest with
   * `globals: true`); with Vitest's default config pass them:
   * `testApi: { describe, it, expect, afterEach }` imported from `vitest`.
   */
  testApi?: GeoContractTestApi;
}

/** The assertions the contract makes: Jest's and Vitest's `expect` both have them. */
export interface GeoContractAssertions {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeGreaterThan(expected: number): void;
  toHaveLength(expected: number): void;
  toMatchObject(expected: object): void;
  toBeNull(): void;
}

/** `expect(actual)` as the contract uses it. */
export interface GeoContractMatchers extends GeoContractAssertions {
  readonly not: GeoContractAssertions;
  readonly rejects: { toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): Promise<void> };
}

/** What the contract needs of a test framework (Jest, Vitest, or anything with the same shape). */
export interface GeoContractTestApi {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  afterEach: (body: () => Promise<void>) => void;
  expect: (actual: unknown) => GeoContractMatchers;
}

/** The framework passed in, or the one whose globals are defined. */
function resolveTestApi(given: GeoContractTestApi | undefined): GeoContractTestApi {
  if (given) return given;
  const globals = globalThis as Partial<GeoContractTestApi>;
  if (globals.describe && globals.it && globals.expect && globals.afterEach) {
    return { describe: globals.describe, it: globals.it, expect: globals.expect, afterEach: globals.afterEach };
  }
  throw new Error(
    "describeTransportContract: no test globals (describe, it, expect, afterEach) are defined; pass them: { testApi: { describe, it, expect, afterEach } } from 'vitest' or '@jest/globals'",
  );
}

const REGIONS = ['asia', 'eu', 'us'];

/**
 * The shared contract every `GeoTransport` must pass unchanged (G1-G5 at the log level,
 * and the G6 state store). Seqs are checked to be strictly increasing; consecutive
 * numbers only where `gapFreeSeq` says the transport promises them.
 * Call it from a spec file with a factory of isolated clusters:
 *
 * @example
 * describeTransportContract('memory', { newCluster: () => ({ transport: memoryTransport({ network: new GeoMemoryNetwork() }) }) });
 */
export function describeTransportContract(name: string, options: GeoTransportContractOptions): void {
  const regions = options.regions ?? REGIONS;
  const timeout = options.timeoutMs ?? 20_000;
  const { describe, it, expect, afterEach } = resolveTestApi(options.testApi);

  describe(`GeoTransport contract: ${name}`, () => {
    const open: GeoTransport[] = [];
    const clusters: GeoContractCluster[] = [];

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((transport) => transport.close()));
      await Promise.allSettled(clusters.splice(0).map(async (cluster) => cluster.dispose?.()));
    });

    /** Connected transports, one per region (or the regions asked for), of one fresh cluster. */
    async function deploy(
      overrides: Partial<Omit<GeoTransportContext, 'region' | 'regions'>> = {},
      only = regions,
    ): Promise<GeoTransport[]> {
      const cluster = await options.newCluster();
      clusters.push(cluster);
      const transports: GeoTransport[] = [];
      for (const region of only) {
        const transport = await cluster.transport({
          region,
          regions,
          dedupWindowMs: 120_000,
          retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 },
          ...overrides,
        });
        open.push(transport);
        await transport.connect();
        transports.push(transport);
      }
      return transports;
    }

    const room = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    /** Retries an async check every 50 ms until it holds. */
    const eventually = async (check: () => Promise<boolean>, what: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
      }
    };
    let counter = 0;
    const draft = (log: GeoLogRef, region: string, data: unknown = { n: ++counter }, eventId = randomUUID()): GeoEnvelopeDraft => ({
      event_id: eventId,
      room_id: log.room,
      type: 'test.event',
      sender: 'user-1',
      timestamp: new Date().toISOString(),
      region,
      data,
    });
    const seqs = (events: GeoLoggedEnvelope[]) => events.map((event) => event.seq);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    /** Strictly increasing, and 1..n without gaps where the transport promises it. */
    const expectLogOrder = (values: number[]) => {
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
      if (options.gapFreeSeq) expect(values).toEqual(range(values[0], values[0] + values.length - 1));
      expect(values[0]).toBeGreaterThan(0);
    };
    /** Appends `n` events and returns their seqs. */
    const appendMany = async (transport: GeoTransport, log: GeoLogRef, n: number) => {
      const result: number[] = [];
      for (let i = 0; i < n; i++) result.push((await transport.append(log, draft(log, regions[0]))).seq);
      return result;
    };

    it(
      'connects idempotently and reports ready',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        await Promise.all([transport.connect(), transport.connect()]);
        expect(transport.isReady()).toBe(true);
      },
      timeout,
    );

    it(
      'states contiguousSeq as the suite is told (gapFreeSeq): clients count skipped seqs as gaps only then',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        expect(transport.contiguousSeq).toBe(options.gapFreeSeq === true);
      },
      timeout,
    );

    it(
      'assigns strictly increasing seqs per log (1, 2, 3… where gap-free), each room on its own',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const a = globalLog(room('a'));
        const b = globalLog(room('b'));
        const results: { seq: number; duplicate: boolean; epoch: string }[] = [];
        for (let i = 0; i < 2; i++) results.push(await transport.append(a, draft(a, regions[0])));
        const other = await transport.append(b, draft(b, regions[0]));
        results.push(await transport.append(a, draft(a, regions[0])));
        expectLogOrder(results.map((result) => result.seq));
        if (options.gapFreeSeq) expect(results.map((result) => result.seq)).toEqual([1, 2, 3]);
        expect(results.every((result) => !result.duplicate && result.epoch === results[0].epoch)).toBe(true);
        if (options.gapFreeSeq) expect(other.seq).toBe(1);
        expect(seqs((await transport.read(a, 0, 10)).events)).toEqual(results.map((result) => result.seq));
      },
      timeout,
    );

    it(
      'G1: a retried event_id is stored once and acked with the original seq, from any region',
      async () => {
        const transports = await deploy();
        const log = globalLog(room('dedup'));
        const first = draft(log, regions[0]);
        const original = await transports[0].append(log, first);
        const second = await transports[0].append(log, draft(log, regions[0]));
        const retries = await Promise.all(transports.map((transport, i) => transport.append(log, { ...first, region: regions[i] })));
        expect(retries.map((retry) => [retry.seq, retry.duplicate])).toEqual(transports.map(() => [original.seq, true]));
        const stored = await transports[0].read(log, 0, 100);
        expect(stored.events.filter((event) => event.event_id === first.event_id)).toHaveLength(1);
        expect(stored.lastSeq).toBe(second.seq);
      },
      timeout,
    );

    it(
      'G1: the same event_id in another room is another event',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const a = globalLog(room('a'));
        const b = globalLog(room('b'));
        const id = randomUUID();
        await transport.append(a, draft(a, regions[0], 1, id));
        const inB = await transport.append(b, draft(b, regions[0], 2, id));
        expect(inB.duplicate).toBe(false);
        expect((await transport.read(b, 0, 10)).events.map((event) => event.event_id)).toEqual([id]);
      },
      timeout,
    );

    it(
      'stores envelopes unchanged (unicode, nested data, null)',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const log = globalLog(room('round-trip'));
        const values = [{ text: 'héllo 世界 👋', nested: { list: [1, 'two', { three: null }] } }, null, 'plain', 42];
        const drafts = values.map((value) => draft(log, regions[0], value));
        const written: number[] = [];
        for (const item of drafts) written.push((await transport.append(log, item)).seq);
        const { events } = await transport.read(log, 0, 10);
        expect(events).toEqual(drafts.map((item, i) => ({ ...item, seq: written[i] })));
      },
      timeout,
    );

    it(
      'reads after a position, in order, in pages, and reports the head',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const log = globalLog(room('read'));
        const empty = await transport.read(log, 0, 10);
        expect(empty).toMatchObject({ events: [], truncated: false, lastSeq: 0 });
        const written = await appendMany(transport, log, 7);
        const page1 = await transport.read(log, written[1], 3);
        const page2 = await transport.read(log, written[4], 3);
        expect(seqs(page1.events)).toEqual(written.slice(2, 5));
        expect(seqs(page2.events)).toEqual(written.slice(5));
        expect(page1).toMatchObject({ truncated: false, lastSeq: written[6], epoch: empty.epoch });
        expect(await transport.head(log)).toEqual({ epoch: empty.epoch, firstSeq: written[0], lastSeq: written[6] });
        expect((await transport.read(log, written[6], 10)).events).toEqual([]);
        expect(await transport.read(log, 0, 10)).toMatchObject({ truncated: false }); // nothing was removed
      },
      timeout,
    );

    it(
      'G2: concurrent appends from every region form one order that every region reads',
      async () => {
        const transports = await deploy();
        const log = globalLog(room('order'));
        const perRegion = 15;
        const tails = transports.map(() => [] as GeoLoggedEnvelope[]);
        await Promise.all(transports.map((transport, i) => transport.tail(log, 0, (event) => tails[i].push(event))));
        await Promise.all(
          transports.map(async (transport, i) => {
            for (let n = 0; n < perRegion; n++) await transport.append(log, draft(log, regions[i], { region: regions[i], n }));
          }),
        );
        const total = perRegion * transports.length;
        await waitFor(() => tails.every((tail) => tail.length >= total), `${total} events on every tail`, timeout / 2);
        const reads = await Promise.all(transports.map((transport) => transport.read(log, 0, 1000)));
        const reference = reads[0].events;
        expect(reference).toHaveLength(total);
        expectLogOrder(seqs(reference));
        for (const read of reads) expect(read.events).toEqual(reference);
        for (const tail of tails) expect(tail).toEqual(reference);
        for (const region of regions) {
          const own = reference.filter((event) => event.region === region).map((event) => (event.data as { n: number }).n);
          expect(own).toEqual(range(0, perRegion - 1)); // one region's sequential appends keep their order
        }
      },
      timeout,
    );

    it(
      'G3: a tail delivers stored events after its position, then live ones, none missing or repeated',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const log = globalLog(room('tail'));
        const before = await appendMany(writer, log, 5);
        const seen: GeoLoggedEnvelope[] = [];
        const subscription = await reader.tail(log, before[1], (event) => seen.push(event));
        const after = await appendMany(writer, log, 5);
        await waitFor(() => seen.length >= 8, '8 events on the tail', timeout / 2);
        expect(seqs(seen)).toEqual([...before.slice(2), ...after]);
        await subscription.close();
        await writer.append(log, draft(log, regions[0]));
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(seen).toHaveLength(8); // closed: nothing more arrives
      },
      timeout,
    );

    it(
      'retention: past maxEvents a read is truncated and starts at the first retained event',
      async () => {
        const [transport] = await deploy({ retention: { maxEvents: 5, maxAgeMs: 3_600_000 } }, regions.slice(0, 1));
        const log = globalLog(room('retention'));
        const written = await appendMany(transport, log, 12);
        const fromStart = await transport.read(log, 0, 100);
        expect(fromStart.truncated).toBe(true);
        expect(seqs(fromStart.events)).toEqual(written.slice(7));
        expect(await transport.read(log, written[2], 100)).toMatchObject({ truncated: true, lastSeq: written[11] });
        expect(await transport.read(log, written[8], 100)).toMatchObject({ truncated: false, lastSeq: written[11] });
        expect(await transport.head(log)).toMatchObject({ firstSeq: written[7], lastSeq: written[11] });
      },
      timeout,
    );

    it(
      'retention: a tail from before the first retained event is refused as retryable (UNAVAILABLE, not INTERNAL)',
      async () => {
        const [transport] = await deploy({ retention: { maxEvents: 3, maxAgeMs: 3_600_000 } }, regions.slice(0, 1));
        const log = globalLog(room('tail-trimmed'));
        const written = await appendMany(transport, log, 8);
        await expect(transport.tail(log, 0, () => undefined)).rejects.toBeInstanceOf(GeoTransportUnavailableError);
        const seen: GeoLoggedEnvelope[] = [];
        await transport.tail(log, written[5], (event) => seen.push(event));
        await waitFor(() => seen.length === 2, 'the retained events after the position', timeout / 2);
        expect(seqs(seen)).toEqual(written.slice(6));
      },
      timeout,
    );

    it(
      'retention by age: expired events are gone and a read from before them is truncated',
      async () => {
        const [transport] = await deploy({ dedupWindowMs: 500, retention: { maxEvents: 1000, maxAgeMs: 1000 } }, regions.slice(0, 1));
        const log = globalLog(room('age'));
        const old = await appendMany(transport, log, 3);
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const [fresh] = await appendMany(transport, log, 1);
        const fromStart = await transport.read(log, 0, 100);
        expect(seqs(fromStart.events)).toEqual([fresh]);
        expect(fromStart.truncated).toBe(true);
        expect((await transport.read(log, old[0], 100)).truncated).toBe(true);
        // Gap-free numbering proves nothing after the last expired event is missing.
        if (options.gapFreeSeq) expect((await transport.read(log, old[2], 100)).truncated).toBe(false);
      },
      timeout,
    );

    it(
      'deleteLog starts a new incarnation: another epoch (seq from 1 where gap-free)',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const log = globalLog(room('epoch'));
        const before = await transport.append(log, draft(log, regions[0]));
        await transport.append(log, draft(log, regions[0]));
        await transport.deleteLog(log);
        const after = await transport.append(log, draft(log, regions[0]));
        if (options.gapFreeSeq) expect(after.seq).toBe(1);
        expect(after.epoch).not.toBe(before.epoch);
        const reread = await transport.read(log, 0, 10);
        expect(reread.epoch).toBe(after.epoch);
        expect(seqs(reread.events)).toEqual([after.seq]);
      },
      timeout,
    );

    it(
      'a tail is told when its log is deleted, so no member waits on a dead incarnation',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const log = globalLog(room('deleted'));
        const { seq } = await writer.append(log, draft(log, regions[0]));
        const errors: Error[] = [];
        await reader.tail(
          log,
          seq,
          () => undefined,
          (error) => errors.push(error),
        );
        await writer.deleteLog(log);
        await waitFor(() => errors.length === 1, 'the tail to report the deleted log', timeout / 2);
      },
      timeout,
    );

    it(
      'a log lost without notice: its tail fails before delivering any event of the new incarnation, which reads report as another epoch',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const cluster = clusters.at(-1)!;
        if (!cluster.loseLog) return; // this broker cannot lose a log on its own
        const log = globalLog(room('lost'));
        const before = await appendMany(writer, log, 3);
        const { epoch } = await reader.head(log);
        const seen: GeoLoggedEnvelope[] = [];
        const errors: Error[] = [];
        await reader.tail(
          log,
          before.at(-1)!,
          (event) => seen.push(event),
          (error) => errors.push(error),
        );
        await cluster.loseLog(log);
        // The new incarnation passes the tail's position at once: its events must not reach
        // the tail as if they followed the lost ones.
        const after: GeoEnvelopeDraft[] = [];
        for (let i = 0; i < 8; i++) {
          const event = draft(log, regions[0]);
          await eventually(() => writer.append(log, event).then(() => true), 'an append to the new incarnation', timeout / 4);
          after.push(event);
        }
        await waitFor(() => errors.length === 1, 'the tail to fail', timeout / 2);
        await sleep(300);
        expect(seen).toEqual([]);
        // Every acked event of the new incarnation is readable, under an epoch that is not the lost one's.
        await eventually(
          async () => {
            const read = await reader.read(log, 0, 100);
            return read.epoch !== epoch && read.events.length === after.length;
          },
          'a read of the new incarnation',
          timeout / 2,
        );
        const read = await reader.read(log, 0, 100);
        expect(read.events.map((event) => event.event_id)).toEqual(after.map((event) => event.event_id));
        expect((await writer.head(log)).epoch).toBe(read.epoch);
      },
      timeout,
    );

    it(
      'a log with no events keeps the epoch it was read with through its first append, for its readers and its tails',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const log = globalLog(room('first'));
        const read = await reader.read(log, 0, 10);
        expect(read).toMatchObject({ events: [], truncated: false, lastSeq: 0 });
        expect((await writer.head(log)).epoch).toBe(read.epoch);
        const seen: GeoLoggedEnvelope[] = [];
        const errors: Error[] = [];
        await reader.tail(
          log,
          0,
          (event) => seen.push(event),
          (error) => errors.push(error),
        );
        const first = await writer.append(log, draft(log, regions[0]));
        expect(first.epoch).toBe(read.epoch);
        await waitFor(() => seen.length === 1, 'the first event on the tail', timeout / 2);
        expect(errors).toEqual([]);
        expect((await reader.head(log)).epoch).toBe(read.epoch);
      },
      timeout,
    );

    it(
      'room ids with broker-special characters are separate logs: none can read or write another',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const base = room('hostile');
        const names = ['', '.b', '.*', '.>', '>', '*', ':b', '{x}', '{x}:b', '|b', '%7Cb', '\\', '/b', '..', '.'].map(
          (suffix) => `${base}${suffix}`,
        );
        const wildcards = [`${base}.>`, `${base}.*`, `${base}*`, `${base}>`];
        const seen = new Map<string, GeoLoggedEnvelope[]>();
        for (const name of wildcards) {
          const events: GeoLoggedEnvelope[] = [];
          seen.set(name, events);
          await reader.tail(globalLog(name), 0, (event) => events.push(event));
        }
        for (const name of new Set(names)) await writer.append(globalLog(name), draft(globalLog(name), regions[0], { name }));
        for (const name of new Set(names)) {
          const { events } = await reader.read(globalLog(name), 0, 100);
          expect(events.map((event) => (event.data as { name: string }).name)).toEqual([name]);
        }
        await waitFor(
          () => wildcards.every((name) => seen.get(name)!.length >= 1),
          'each wildcard-looking room to get its own event',
          timeout / 2,
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        for (const name of wildcards) expect(seen.get(name)!.map((event) => event.room_id)).toEqual([name]);
      },
      timeout,
    );

    it(
      'G5: global and regional logs of one room are separate logs',
      async () => {
        const [transport] = await deploy({}, regions.slice(0, 1));
        const name = room('scoped');
        const global = globalLog(name);
        const regional = regionalLog(name, regions[0]);
        await transport.append(global, draft(global, regions[0]));
        await transport.append(global, draft(global, regions[0]));
        const local = await transport.append(regional, draft(regional, regions[0]));
        if (options.gapFreeSeq) expect(local.seq).toBe(1);
        expect(seqs((await transport.read(regional, 0, 10)).events)).toEqual([local.seq]);
        expect((await transport.read(global, 0, 10)).events).toHaveLength(2);
      },
      timeout,
    );

    it(
      'G5: ephemeral events reach every region and are not stored',
      async () => {
        const transports = await deploy();
        const log = globalLog(room('ephemeral'));
        const received = transports.map(() => [] as GeoEnvelopeDraft[]);
        await Promise.all(transports.map((transport, i) => transport.subscribeEphemeral(log, (event) => received[i].push(event))));
        const typing = draft(log, regions[0], { typing: true });
        await transports[0].publishEphemeral(log, typing);
        await waitFor(() => received.every((list) => list.length === 1), 'the ephemeral event in every region', timeout / 2);
        for (const list of received) expect(list[0]).toEqual(typing);
        expect((await transports[1].read(log, 0, 10)).events).toEqual([]);
      },
      timeout,
    );

    it(
      'G6 state: a session saved in one region is read in another, and expires',
      async () => {
        const [eu, us] = await deploy({}, regions.slice(0, 2));
        const id = `s-${randomUUID()}`;
        const session = { sender: 'alice', rooms: { lobby: { seq: 7, epoch: 'e1' }, 'team.a:b': { seq: 2, epoch: 'e2' } }, updatedAt: 1 };
        await eu.state.putSession(id, session, 60_000);
        expect(await us.state.getSession(id)).toEqual(session);
        await us.state.deleteSession(id);
        expect(await eu.state.getSession(id)).toBeNull();
        await eu.state.putSession(id, session, 300);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await us.state.getSession(id)).toBeNull();
      },
      timeout,
    );

    it(
      'G6 state: a token revoked in one region is revoked in every region until it expires',
      async () => {
        const transports = await deploy();
        const id = `jti-${randomUUID()}`;
        const short = `jti-${randomUUID()}`;
        expect(await transports[1].state.isRevoked(id)).toBe(false);
        await transports[0].state.revoke(id, Date.now() + 60_000);
        await transports[0].state.revoke(short, Date.now() + 300);
        for (const transport of transports) expect(await transport.state.isRevoked(id)).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await transports[2].state.isRevoked(short)).toBe(false);
      },
      timeout,
    );

    it(
      'G6 state: presence spans regions, expires without heartbeats and can be removed',
      async () => {
        const transports = await deploy();
        const name = room('presence');
        await transports[0].state.touchPresence(name, { id: 'c1', sender: 'alice', region: regions[0] }, 60_000);
        await transports[1].state.touchPresence(name, { id: 'c2', sender: 'bob', region: regions[1] }, 300);
        await transports[2].state.touchPresence(room('other'), { id: 'c3', sender: 'carol', region: regions[2] }, 60_000);
        const byId = (members: { id: string }[]) => [...members].sort((a, b) => a.id.localeCompare(b.id));
        expect(byId(await transports[2].state.presence(name))).toEqual([
          { id: 'c1', sender: 'alice', region: regions[0] },
          { id: 'c2', sender: 'bob', region: regions[1] },
        ]);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await transports[0].state.presence(name)).toEqual([{ id: 'c1', sender: 'alice', region: regions[0] }]);
        await transports[1].state.removePresence(name, 'c1');
        expect(await transports[2].state.presence(name)).toEqual([]);
      },
      timeout,
    );

    it(
      'close() stops tails and is idempotent',
      async () => {
        const [writer, reader] = await deploy({}, regions.slice(0, 2));
        const log = globalLog(room('close'));
        const seen: GeoLoggedEnvelope[] = [];
        await reader.tail(log, 0, (event) => seen.push(event));
        await writer.append(log, draft(log, regions[0]));
        await waitFor(() => seen.length === 1, 'the first event', timeout / 2);
        await reader.close();
        await reader.close();
        expect(reader.isReady()).toBe(false);
        await writer.append(log, draft(log, regions[0]));
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(seen).toHaveLength(1);
      },
      timeout,
    );

    // ---- G3 once retention emptied a log ---------------------------------------------

    it(
      'G3: a resume from a position whose later events all aged out is told it lost them, also after another instance or region appends first',
      async () => {
        const retention = { dedupWindowMs: 500, retention: { maxEvents: 1000, maxAgeMs: 1000 } };
        const [writer, other] = await deploy(retention, regions.slice(0, 2));
        const log = globalLog(room('aged-out'));
        const bystander = globalLog(room('aged-bystander'));
        const old = await appendMany(writer, log, 3);
        await sleep(2500);
        // Every event of the room aged out: reads from before the last one say events are missing…
        for (const since of [0, old[0], old[1]]) expect(await writer.read(log, since, 100)).toMatchObject({ events: [], truncated: true });
        // …and so does the head, which a join answers without reading when `since >= lastSeq`.
        const head = await writer.head(log);
        expect(head.lastSeq).toBeGreaterThan(old[1]);
        await expect(writer.tail(log, old[1], () => undefined)).rejects.toBeInstanceOf(GeoTransportUnavailableError);
        // A member joins the empty bystander room at its head meanwhile.
        const bystanderHead = await other.head(bystander);
        // Another instance of the writer's region (as after a restart), then another region,
        // append first: neither saw the room's events, and neither may hide their loss.
        const restarted = await clusters.at(-1)!.transport({ region: regions[0], regions, ...retention });
        open.push(restarted);
        await restarted.connect();
        const fresh = await restarted.append(log, draft(log, regions[0]));
        const next = await other.append(log, draft(log, regions[1]));
        const inBystander = await other.append(bystander, draft(bystander, regions[1]));
        expect(fresh.epoch).toBe(head.epoch);
        for (const transport of [writer, other, restarted]) {
          for (const since of [0, old[0], old[1]]) {
            const read = await transport.read(log, since, 100);
            expect({ since, truncated: read.truncated, seqs: seqs(read.events) }).toEqual({
              since,
              truncated: true,
              seqs: [fresh.seq, next.seq],
            });
          }
          // A member that joined at the head, or joined the bystander room while it was empty, lost nothing.
          expect(await transport.read(log, head.lastSeq, 100)).toMatchObject({ truncated: false, epoch: head.epoch });
          expect(seqs((await transport.read(log, head.lastSeq, 100)).events)).toEqual([fresh.seq, next.seq]);
          const resumed = await transport.read(bystander, bystanderHead.lastSeq, 100);
          expect({ truncated: resumed.truncated, seqs: seqs(resumed.events) }).toEqual({ truncated: false, seqs: [inBystander.seq] });
        }
      },
      timeout,
    );

    it(
      'homes: every region names the same home for a room; asking places nothing',
      async () => {
        const transports = await deploy();
        const log = globalLog(room('home'));
        const before = await Promise.all(transports.map((transport) => transport.home(log.room)));
        const placement = before[0].placement;
        expect(placement).toBe(options.roomHomes ? 'per-room' : 'fixed');
        for (const transport of transports) expect(transport.placement).toBe(placement);
        for (const home of before) expect(home).toEqual(before[0]);
        if (options.roomHomes) expect(before[0]).toEqual({ room: log.room, region: null, term: 0, placement });
        await transports[1].append(log, draft(log, regions[1]));
        const after = await Promise.all(transports.map((transport) => transport.home(log.room)));
        for (const home of after) expect(home).toEqual(after[0]);
        // Without per-room homes, appends change nothing; with them, the first one placed the room where it was made.
        if (options.roomHomes) expect(after[0]).toEqual({ room: log.room, region: regions[1], term: 1, placement });
        else expect(after[0]).toEqual(before[0]);
      },
      timeout,
    );

    if (options.roomHomes) {
      it(
        'homes: placement chooses the home at the first append; later appends from anywhere keep it',
        async () => {
          const last = regions[regions.length - 1];
          const transports = await deploy({ placeRoom: (name) => (name.startsWith('placed-') ? last : regions[0]) });
          const log = globalLog(room('placed'));
          await transports[0].append(log, draft(log, regions[0]));
          for (const [i, transport] of transports.entries()) await transport.append(log, draft(log, regions[i]));
          for (const transport of transports) expect(await transport.home(log.room)).toMatchObject({ region: last, term: 1 });
        },
        timeout,
      );

      it(
        'homes: a room its placement names a region for is placed by its first join; one left to the first append is not',
        async () => {
          const last = regions[regions.length - 1];
          const named = (name: string) => (name.startsWith('named-') ? last : undefined);
          const transports = await deploy({ placeRoom: (name) => named(name) ?? regions[0], placeOnJoin: named });
          const log = globalLog(room('named'));
          const open = globalLog(room('open'));
          const seen: GeoLoggedEnvelope[] = [];
          await transports[0].tail(log, 0, (event) => seen.push(event));
          await transports[0].tail(open, 0, () => undefined);
          // No append: only the join can place it.
          for (const deadline = Date.now() + timeout / 2; (await transports[0].home(log.room)).region === null && Date.now() < deadline;)
            await new Promise((resolve) => setTimeout(resolve, 20));
          for (const transport of transports) expect(await transport.home(log.room)).toMatchObject({ region: last, term: 1 });
          expect(await transports[0].home(open.room)).toMatchObject({ region: null, term: 0 });
          // The member who joined before anything was appended gets every event, in order.
          const written = await appendMany(transports[0], log, 3);
          await waitFor(() => seen.length >= 3, 'the events on the tail opened before the placement', timeout / 2);
          expect(seqs(seen)).toEqual(written);
        },
        timeout,
      );

      it(
        "homes: a room placed after the broker trimmed other rooms' history is whole from position 0 (members who joined it empty lose nothing)",
        async () => {
          const [transport] = await deploy({ retention: { maxEvents: 2, maxAgeMs: 3_600_000 } }, regions.slice(0, 1));
          const busy = globalLog(room('busy'));
          await appendMany(transport, busy, 5); // its oldest events are trimmed: the broker's history no longer starts at 1
          const quiet = globalLog(room('quiet'));
          const empty = await transport.head(quiet); // what a member who joins the empty room holds
          const written = await appendMany(transport, quiet, 2);
          for (const position of [0, empty.lastSeq]) {
            const read = await transport.read(quiet, position, 10);
            expect({ position, truncated: read.truncated, seqs: seqs(read.events), epoch: read.epoch }).toEqual({
              position,
              truncated: false,
              seqs: written,
              epoch: empty.epoch,
            });
          }
          const seen: GeoLoggedEnvelope[] = [];
          await transport.tail(quiet, 0, (event) => seen.push(event));
          await waitFor(() => seen.length >= 2, 'both events on a tail from 0', timeout / 2);
          expect(seqs(seen)).toEqual(written);
        },
        timeout,
      );

      it(
        'homes: first appends racing from every region agree on one home and one order',
        async () => {
          const transports = await deploy();
          const log = globalLog(room('race'));
          const tails = transports.map(() => [] as GeoLoggedEnvelope[]);
          await Promise.all(transports.map((transport, i) => transport.tail(log, 0, (event) => tails[i].push(event))));
          const acks = await Promise.all(
            transports.map(async (transport, i) => {
              const own: number[] = [];
              for (let n = 0; n < 5; n++) own.push((await transport.append(log, draft(log, regions[i], { n }))).seq);
              return own;
            }),
          );
          const total = 5 * transports.length;
          await waitFor(() => tails.every((tail) => tail.length >= total), `${total} events on every tail`, timeout / 2);
          const homes = await Promise.all(transports.map((transport) => transport.home(log.room)));
          expect(homes.map((home) => home.region).every((region) => region === homes[0].region)).toBe(true);
          expect(regions.includes(homes[0].region ?? '')).toBe(true);
          const reference = (await transports[0].read(log, 0, 100)).events;
          expect(seqs(reference).sort((a, b) => a - b)).toEqual(acks.flat().sort((a, b) => a - b));
          expectLogOrder(seqs(reference));
          for (const tail of tails) expect(tail).toEqual(reference);
        },
        timeout,
      );

      it(
        'moves: a room moved while every region appends keeps one order: nothing lost, repeated or reordered, same epoch, every ack once',
        async () => {
          const transports = await deploy();
          const log = globalLog(room('moving'));
          await transports[0].append(log, draft(log, regions[0])); // placed in the first region
          const before = await transports[0].head(log);
          const tails = transports.map(() => [] as GeoLoggedEnvelope[]);
          await Promise.all(transports.map((transport, i) => transport.tail(log, 0, (event) => tails[i].push(event))));
          const to = regions[regions.length - 1];
          // Every region appends before, during and after the move, each one at a time, as a publisher would.
          let moved = false;
          const acks = transports.map(() => [] as number[]);
          const publishing = transports.map(async (transport, i) => {
            for (let n = 0; !moved || n < 12; n++) {
              const ack = await transport.append(log, draft(log, regions[i], { i, n }));
              expect(ack.duplicate).toBe(false);
              expect(ack.epoch).toBe(before.epoch);
              acks[i].push(ack.seq);
              await sleep(20);
            }
          });
          await sleep(100);
          const home = await transports[1].move!(log.room, to);
          moved = true;
          expect(home).toMatchObject({ room: log.room, region: to, term: 2, placement: 'per-room' });
          await Promise.all(publishing);
          const total = 1 + acks.flat().length;
          await waitFor(() => tails.every((tail) => tail.length >= total), `${total} events on every tail`, timeout / 2);
          const reference = (await transports[2].read(log, 0, 1000)).events;
          expect(reference).toHaveLength(total);
          expectLogOrder(seqs(reference));
          for (const own of acks) for (const seq of own) expect(seqs(reference).includes(seq)).toBe(true);
          for (const tail of tails) expect(seqs(tail)).toEqual(seqs(reference));
          for (const transport of transports) expect(await transport.home(log.room)).toMatchObject({ region: to, term: 2 });
          expect((await transports[0].head(log)).epoch).toBe(before.epoch);
          // A position taken before the move resumes exactly, by a read and by a tail.
          const position = before.lastSeq;
          const resumed = await transports[1].read(log, position, 1000);
          expect({ truncated: resumed.truncated, seqs: seqs(resumed.events) }).toEqual({
            truncated: false,
            seqs: seqs(reference).slice(1),
          });
          const late: GeoLoggedEnvelope[] = [];
          await transports[0].tail(log, position, (event) => late.push(event));
          await waitFor(() => late.length >= total - 1, 'the rest of the log on a tail from before the move', timeout / 2);
          expect(seqs(late)).toEqual(seqs(reference).slice(1));
        },
        timeout,
      );

      it(
        'moves: an event_id appended before a move and retried after it is a duplicate at its original position',
        async () => {
          const transports = await deploy();
          const log = globalLog(room('moved-dedup'));
          const original = draft(log, regions[0]);
          const first = await transports[0].append(log, original);
          await transports[0].append(log, draft(log, regions[0]));
          await transports[0].move!(log.room, regions[1]);
          const retried = await transports[1].append(log, original);
          expect(retried).toEqual({ seq: first.seq, epoch: first.epoch, duplicate: true });
          const after = await transports[1].append(log, draft(log, regions[1]));
          expect(after.seq).toBeGreaterThan(first.seq);
          const { events } = await transports[2].read(log, 0, 10);
          expect(events.map((event) => event.event_id).filter((id) => id === original.event_id)).toHaveLength(1);
          expect(events).toHaveLength(3);
        },
        timeout,
      );
    }
  });

  describeRevocationChannel(name, options, regions, timeout, { describe, it, expect, afterEach });
}

/**
 * The revocation channel of the state store (`watchRevocations`), in a block of its own:
 * servers close the connections of a revoked token when it tells them.
 */
function describeRevocationChannel(
  name: string,
  options: GeoTransportContractOptions,
  regions: string[],
  timeout: number,
  { describe, it, expect, afterEach }: GeoContractTestApi,
): void {
  describe(`GeoTransport contract: ${name}, revocation channel`, () => {
    const open: GeoTransport[] = [];
    const clusters: GeoContractCluster[] = [];
    const watches: GeoSubscription[] = [];

    afterEach(async () => {
      await Promise.allSettled(watches.splice(0).map((watch) => watch.close()));
      await Promise.allSettled(open.splice(0).map((transport) => transport.close()));
      await Promise.allSettled(clusters.splice(0).map(async (cluster) => cluster.dispose?.()));
    });

    async function deploy(): Promise<GeoTransport[]> {
      const cluster = await options.newCluster();
      clusters.push(cluster);
      const transports: GeoTransport[] = [];
      for (const region of regions) {
        const transport = await cluster.transport({
          region,
          regions,
          dedupWindowMs: 120_000,
          retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 },
        });
        open.push(transport);
        await transport.connect();
        transports.push(transport);
      }
      return transports;
    }

    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    it(
      'watchRevocations: a revoke() in any region reaches the watcher of every region once, with its token id; a closed watch hears nothing more',
      async () => {
        const transports = await deploy();
        const heard = transports.map(() => [] as string[]);
        for (const [i, transport] of transports.entries()) {
          watches.push(await transport.state.watchRevocations((tokenId) => heard[i].push(tokenId)));
        }
        const first = `jti-${randomUUID()}`;
        await transports[0].state.revoke(first, Date.now() + 60_000);
        await waitFor(() => heard.every((tokens) => tokens.includes(first)), 'every region to hear the revocation', timeout / 2);
        expect(await transports[1].state.isRevoked(first)).toBe(true);
        const last = transports.length - 1;
        await watches[last].close();
        await watches[last].close(); // idempotent
        const second = `jti-${randomUUID()}`;
        await transports[1].state.revoke(second, Date.now() + 60_000);
        await waitFor(() => heard.slice(0, last).every((tokens) => tokens.includes(second)), 'the open watches to hear it', timeout / 2);
        await sleep(300);
        for (const tokens of heard.slice(0, last)) expect(tokens).toEqual([first, second]);
        expect(heard[last]).toEqual([first]);
      },
      timeout,
    );
  });
}
