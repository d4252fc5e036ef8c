import type * as PromClient from 'prom-client';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoFrame } from '../protocol/wire.js';
import type { GeoMetricsRegistry, ResolvedGeoMetricsOptions } from './geo-metrics.options.js';
import { REPORT_FRAME, type GeoClientReport } from './client-report.js';
import { loadPromClient } from './load-prom-client.js';
import { Tally, talliesOf, type Child, type TallyCounter } from './tally.js';

/** The label value of everything outside a bounded set (events, regions, codes). */
export const OTHER = 'other';

/** What a region's server tells the gauges, read at each scrape (nothing on the hot path). */
export interface GeoGaugeSource {
  connections(): number;
  /** Joined (connection, room) pairs and distinct rooms with local members. */
  memberships(): { memberships: number; rooms: number };
  transportReady(): boolean;
}

/** Operations of the state store (sessions, presence, revocations) that are counted. */
export type GeoStateOperation =
  'putSession' | 'getSession' | 'deleteSession' | 'revoke' | 'isRevoked' | 'touchPresence' | 'removePresence' | 'presence';

type Observer = { observe(value: number): void };

/** Control frames the server sends or receives: event labels besides the app's own events. */
const PROTOCOL_EVENTS: readonly string[] = [...Object.values(GeoFrame), REPORT_FRAME];

/**
 * Append round trips (seconds): from a few hundred microseconds in memory to a
 * cross-region quorum write.
 */
const APPEND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Delivery lag (seconds): same-region deliveries in milliseconds, cross-region in tens to hundreds. */
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The server-side sources of every region that registers on a registry (several apps may share one process). */
const sourcesByRegistry = new WeakMap<object, Map<GeoGaugeSource, { region: string; transport: string }>>();

/**
 * geo-ws's Prometheus metrics for one region (see docs/OPERATIONS.md). Inject it to read
 * `registry`; `null` is injected when the `metrics` option is off.
 *
 * The hot path only increments pre-bound children: label values are bounded (the app's
 * `@GeoSubscribe` events and the `geo.*` frames, the directory's regions, the error
 * codes; anything else is `other`), never room or user ids, and a delivery is observed
 * once per event on this node, not once per member.
 */
export class GeoMetrics {
  /** Event names that get their own label value (set at bootstrap). */
  private events = new Set<string>(PROTOCOL_EVENTS);
  private readonly framesIn = new Map<string, Map<string, Child>>();
  private readonly framesOut = new Map<string, Map<string, Child>>();
  private readonly bytesOut = new Map<string, Child>();
  private readonly lag = new Map<string, Observer>();
  private readonly refusalsByCode = new Map<string, Child>();
  private readonly stateOps = new Map<string, Child>();
  private readonly upgradeRefusals = new Map<string, Child>();
  private readonly append: Observer;
  private readonly dedupHits: Child;
  private readonly appendErrors: Child;
  private readonly replayed: Child;
  private readonly joinsRecovered: Child;
  private readonly joinsUnrecovered: Child;
  private readonly slowConsumers: Child;
  private readonly tailStops: Child;
  private readonly roomMoves: TallyCounter;
  /** Per region a room moved from: its series, made once. */
  private readonly roomMovesFrom = new Map<string, Child>();
  private readonly clientEvents: Child;
  private readonly anomalies: Record<'duplicate' | 'regression' | 'gap', Child>;

  private constructor(
    private readonly prom: typeof PromClient,
    /** The registry the metrics are on (prom-client's default `register` unless one was given). */
    readonly registry: GeoMetricsRegistry,
    private readonly options: ResolvedGeoMetricsOptions,
    private readonly region: string,
    private readonly regions: ReadonlySet<string>,
  ) {
    const p = options.prefix;
    const sources = this.sources();
    this.gauge(`${p}connections`, 'Open WebSocket connections', ['region'], (source) => source.connections());
    this.gauge(`${p}room_memberships`, 'Rooms joined, summed over connections', ['region'], (source) => source.memberships().memberships);
    this.gauge(`${p}rooms`, 'Distinct rooms with at least one member on this instance', ['region'], (source) => source.memberships().rooms);
    this.metric(
      `${p}transport_ready`,
      () =>
        new prom.Gauge({
          name: `${p}transport_ready`,
          help: '1 while the transport (room log) can serve appends and reads, else 0',
          labelNames: ['region', 'transport'],
          registers: [],
          collect() {
            this.reset();
            for (const [source, { region, transport }] of sources) this.set({ region, transport }, source.transportReady() ? 1 : 0);
          },
        }),
    );
    const here = { region: this.region };
    this.append = this.histogram(
      `${p}append_duration_seconds`,
      'Append round trips to the room log (ack-worthy)',
      ['region'],
      APPEND_BUCKETS,
    ).labels(here);
    this.dedupHits = this.counter(`${p}dedup_hits_total`, 'Appends of an event_id already in the log (client retries, G1)', [
      'region',
    ]).labels(here);
    this.appendErrors = this.counter(`${p}append_errors_total`, 'Appends the transport failed (the client got geo.error)', [
      'region',
    ]).labels(here);
    this.replayed = this.counter(`${p}replayed_events_total`, 'Events replayed from history to resuming members', ['region']).labels(here);
    const joins = this.counter(`${p}joins_total`, 'Room joins answered, by whether the resume was recovered', ['region', 'recovered']);
    this.joinsRecovered = joins.labels({ ...here, recovered: 'true' });
    this.joinsUnrecovered = joins.labels({ ...here, recovered: 'false' });
    this.slowConsumers = this.counter(`${p}slow_consumer_closes_total`, 'Connections closed as slow consumers (1013)', ['region']).labels(
      here,
    );
    this.tailStops = this.counter(
      `${p}tail_stops_total`,
      'Live tails of room logs that stopped (log reset, stream recreated, broker silent): their members joined again',
      ['region'],
    ).labels(here);
    this.roomMoves = this.counter(`${p}room_moves_total`, "Rooms whose log this region moved to itself, following the room's traffic", [
      'region',
      'from',
    ]);
    this.clientEvents = this.counter(`${p}client_events_total`, 'Events clients reported receiving (geo.report)', ['region']).labels(here);
    const anomalies = this.counter(`${p}client_anomalies_total`, 'Duplicates, seq regressions and gaps clients reported (geo.report)', [
      'region',
      'kind',
    ]);
    this.anomalies = {
      duplicate: anomalies.labels({ ...here, kind: 'duplicate' }),
      regression: anomalies.labels({ ...here, kind: 'regression' }),
      gap: anomalies.labels({ ...here, kind: 'gap' }),
    };
    // Registered now so that every series family exists from the first scrape.
    this.counter(`${p}frames_received_total`, 'Frames received from clients', ['region', 'event', 'codec']);
    this.counter(`${p}frames_sent_total`, 'Frames sent to clients (one per member for room events)', ['region', 'event', 'codec']);
    this.counter(`${p}sent_bytes_total`, 'Bytes of the frames sent to clients', ['region', 'codec']);
    this.histogram(
      `${p}delivery_lag_seconds`,
      'From the envelope timestamp to this node writing it to its members',
      ['origin', 'region'],
      LAG_BUCKETS,
    );
    this.counter(`${p}refusals_total`, 'geo.error frames sent, by code', ['region', 'code']);
    this.counter(`${p}upgrade_refusals_total`, 'WebSocket upgrades refused in HTTP, by status and code', ['region', 'status', 'code']);
    this.counter(`${p}state_operations_total`, 'State store operations (sessions, presence, revocations) by outcome', [
      'region',
      'operation',
      'outcome',
    ]);
  }

  /** Loads prom-client and registers (or reuses) every geo-ws metric on the registry. */
  static async create(options: ResolvedGeoMetricsOptions, region: string, regions: Iterable<string>): Promise<GeoMetrics> {
    const prom = await loadPromClient();
    return new GeoMetrics(prom, options.registry ?? prom.register, options, region, new Set(regions));
  }

  /** How often clients are asked to send `geo.report`. */
  get reportMs(): number {
    return this.options.reportMs;
  }

  /** Where the registry is served on the app's HTTP server (`metrics.path`); `false` when the app serves it itself. */
  get path(): string | false {
    return this.options.path;
  }

  /** The app's `@GeoSubscribe` events get their own label value; any other event name is `other`. */
  useEvents(names: Iterable<string>): void {
    this.events = new Set([...PROTOCOL_EVENTS, ...names]);
  }

  /** Gauges read `source` at each scrape until {@link unwatch}. */
  watch(source: GeoGaugeSource, transport: string): void {
    this.sources().set(source, { region: this.region, transport });
  }

  unwatch(source: GeoGaugeSource): void {
    this.sources().delete(source);
  }

  frameReceived(event: string, codec: string): void {
    this.eventChild(this.framesIn, `${this.options.prefix}frames_received_total`, event, codec).inc();
  }

  /** One frame to one client (control frames: answers, errors, welcome). */
  frameSent(event: string, codec: string, bytes: number): void {
    this.eventChild(this.framesOut, `${this.options.prefix}frames_sent_total`, event, codec).inc();
    this.bytesChild(codec).inc(bytes);
  }

  /**
   * One event written to `members` local members as one pre-built frame of `bytes`:
   * counted once for all of them, and its delivery lag observed once (live events only).
   */
  delivered(
    event: { type: string; region: string; timestamp: string },
    members: number,
    bytes: number,
    codec: string,
    live: boolean,
  ): void {
    this.eventChild(this.framesOut, `${this.options.prefix}frames_sent_total`, event.type, codec).inc(members);
    this.bytesChild(codec).inc(bytes * members);
    if (!live) return;
    const lag = (Date.now() - Date.parse(event.timestamp)) / 1000;
    if (lag >= 0) this.lagChild(event.region).observe(lag);
  }

  appended(seconds: number, duplicate: boolean): void {
    this.append.observe(seconds);
    if (duplicate) this.dedupHits.inc();
  }

  appendFailed(seconds: number): void {
    this.append.observe(seconds);
    this.appendErrors.inc();
  }

  joined(recovered: boolean): void {
    (recovered ? this.joinsRecovered : this.joinsUnrecovered).inc();
  }

  replayedEvents(count: number): void {
    this.replayed.inc(count);
  }

  refused(code: string): void {
    let child = this.refusalsByCode.get(code);
    if (!child) {
      const label = KNOWN_CODES.has(code) ? code : OTHER;
      child = this.counterNamed(`${this.options.prefix}refusals_total`).labels({ region: this.region, code: label });
      if (label !== OTHER) this.refusalsByCode.set(code, child);
    }
    child.inc();
  }

  /** Rare (refused upgrades): labelled on the fly. */
  upgradeRefused(status: number, code: string): void {
    const label = UPGRADE_CODES.has(code) ? code : OTHER;
    const key = `${status} ${label}`; // statuses and codes are a handful: the map stays small
    let child = this.upgradeRefusals.get(key);
    if (!child) {
      child = this.counterNamed(`${this.options.prefix}upgrade_refusals_total`).labels({
        region: this.region,
        status: String(status),
        code: label,
      });
      this.upgradeRefusals.set(key, child);
    }
    child.inc();
  }

  tailStopped(): void {
    this.tailStops.inc();
  }

  /** This region moved a room's log here from `from` (`placement` answering `'auto'`). */
  roomMoved(from: string): void {
    let series = this.roomMovesFrom.get(from);
    if (!series) this.roomMovesFrom.set(from, (series = this.roomMoves.labels({ region: this.region, from })));
    series.inc();
  }

  slowConsumerClosed(): void {
    this.slowConsumers.inc();
  }

  stateOperation(operation: GeoStateOperation, ok: boolean): void {
    const key = ok ? operation : `${operation}!`;
    let child = this.stateOps.get(key);
    if (!child) {
      child = this.counterNamed(`${this.options.prefix}state_operations_total`).labels({
        region: this.region,
        operation,
        outcome: ok ? 'ok' : 'error',
      });
      this.stateOps.set(key, child);
    }
    child.inc();
  }

  clientReport(report: GeoClientReport): void {
    this.clientEvents.inc(report.events);
    this.anomalies.duplicate.inc(report.duplicates);
    this.anomalies.regression.inc(report.regressions);
    this.anomalies.gap.inc(report.gaps);
  }

  private eventChild(cache: Map<string, Map<string, Child>>, name: string, event: string, codec: string): Child {
    let byEvent = cache.get(codec);
    if (!byEvent) cache.set(codec, (byEvent = new Map<string, Child>()));
    // Only known names are cached: a client inventing event names must not grow this map.
    const label = this.events.has(event) ? event : OTHER;
    let child = byEvent.get(label);
    if (!child) byEvent.set(label, (child = this.counterNamed(name).labels({ region: this.region, event: label, codec })));
    return child;
  }

  private bytesChild(codec: string): Child {
    let child = this.bytesOut.get(codec);
    if (!child)
      this.bytesOut.set(
        codec,
        (child = this.counterNamed(`${this.options.prefix}sent_bytes_total`).labels({ region: this.region, codec })),
      );
    return child;
  }

  private lagChild(origin: string): Observer {
    const label = this.regions.has(origin) ? origin : OTHER;
    let child = this.lag.get(label);
    if (!child) {
      const histogram = this.registry.getSingleMetric(`${this.options.prefix}delivery_lag_seconds`) as PromClient.Histogram;
      this.lag.set(label, (child = histogram.labels({ origin: label, region: this.region })));
    }
    return child;
  }

  private sources(): Map<GeoGaugeSource, { region: string; transport: string }> {
    let sources = sourcesByRegistry.get(this.registry);
    if (!sources) sourcesByRegistry.set(this.registry, (sources = new Map<GeoGaugeSource, { region: string; transport: string }>()));
    return sources;
  }

  /** A metric already on the registry (another region of this process registered it), else a new one registered. */
  private metric<T>(name: string, create: () => T): T {
    const existing = this.registry.getSingleMetric(name) as T | undefined;
    if (existing) return existing;
    const metric = create();
    (this.registry as PromClient.Registry).registerMetric(metric as PromClient.Metric);
    return metric;
  }

  private counter(name: string, help: string, labelNames: string[]): TallyCounter {
    const tallies = talliesOf(this.registry, name);
    this.metric(
      name,
      () =>
        new this.prom.Counter({
          name,
          help,
          labelNames,
          registers: [],
          collect: () => {
            for (const tally of tallies) tally.flush();
          },
        }),
    );
    return this.counterNamed(name);
  }

  /** Series of a registered counter, each made once and kept by its caller. */
  private counterNamed(name: string): TallyCounter {
    const counter = this.registry.getSingleMetric(name) as PromClient.Counter;
    const tallies = talliesOf(this.registry, name);
    return {
      labels: (labels) => {
        const tally = new Tally(counter.labels(labels));
        tallies.add(tally);
        return tally;
      },
    };
  }

  private histogram(name: string, help: string, labelNames: string[], buckets: number[]): PromClient.Histogram {
    return this.metric(name, () => new this.prom.Histogram({ name, help, labelNames, buckets, registers: [] }));
  }

  /** A gauge summed over the regions registered on this registry, read at scrape time. */
  private gauge(name: string, help: string, labelNames: string[], read: (source: GeoGaugeSource) => number): void {
    const sources = this.sources();
    this.metric(
      name,
      () =>
        new this.prom.Gauge({
          name,
          help,
          labelNames,
          registers: [],
          collect() {
            this.reset();
            for (const [source, { region }] of sources) this.inc({ region }, read(source));
          },
        }),
    );
  }
}

const KNOWN_CODES: ReadonlySet<string> = new Set<string>(Object.values(GeoErrorCode));
const UPGRADE_CODES: ReadonlySet<string> = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'TOO_MANY_CONNECTIONS', 'UNAVAILABLE', 'NOT_FOUND']);
