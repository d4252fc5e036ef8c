import type { GeoEnvelopeDraft, GeoLoggedEnvelope } from '../../envelope/geo-envelope.interface.js';
import type {
  GeoAppendResult,
  GeoTransport,
  GeoTransportContext,
  GeoTransportFactory,
  GeoLogHead,
  GeoReadResult,
  GeoSubscription,
} from '../geo-transport.interface.js';
import { GeoTransportUnavailableError } from '../../errors/geo-transport-unavailable.error.js';
import { GeoConfigError } from '../../errors/geo-config.error.js';
import { globalLog, type GeoLogRef } from '../log-ref.js';
import type { GeoRoomHome } from '../room-home.js';
import { DelayedQueue } from './delayed-queue.js';
import { GeoMemoryNetwork, type MemoryLog } from './memory-network.js';
import { settle } from './settle.js';

/** Options of {@link memoryTransport}. */
export interface GeoMemoryTransportOptions {
  /**
   * The network shared by the regions of this process. Give every region the same one
   * to run several regions in one process; default: a private network (one region).
   */
  network?: GeoMemoryNetwork;
}

/**
 * The embedded default transport: logs in this process's memory, with a simulated
 * delay between regions. For demos, tests and single-process deployments; nothing
 * survives a restart.
 * @example GeoWsModule.forRoot({ region: 'eu', regions, transport: memoryTransport({ network }) })
 */
export function memoryTransport(options: GeoMemoryTransportOptions = {}): GeoTransportFactory {
  const network = options.network ?? new GeoMemoryNetwork();
  return (context) => new MemoryTransport(network, context);
}

/** One region's view of a {@link GeoMemoryNetwork}. */
export class MemoryTransport implements GeoTransport {
  readonly name = 'memory';
  readonly contiguousSeq = true;
  private connected = false;
  private closed = false;
  private readonly subscriptions = new Set<() => void>();

  get state() {
    return this.network.state;
  }

  get placement(): GeoRoomHome['placement'] {
    return this.network.placement;
  }

  constructor(
    private readonly network: GeoMemoryNetwork,
    private readonly context: GeoTransportContext,
  ) {}

  connect(): Promise<void> {
    return settle(() => {
      if (this.closed) throw new GeoTransportUnavailableError('the memory transport was closed; connect a new one');
      this.connected = true;
    });
  }

  isReady(): boolean {
    return this.connected && !this.closed && !this.network.isIsolated(this.context.region);
  }

  async append(ref: GeoLogRef, draft: GeoEnvelopeDraft): Promise<GeoAppendResult> {
    this.assertUsable();
    const { region, placeRoom } = this.context;
    // Decided at once, as the broker's record would be: concurrent first appends agree.
    const home = this.network.place(ref, placeRoom?.(ref.room) ?? region);
    await this.travel(this.context.region, home);
    const log = this.logOf(ref);
    const result = log.append(draft);
    await this.travel(home, this.context.region);
    return { ...result, epoch: log.epoch };
  }

  async read(ref: GeoLogRef, afterSeq: number, limit: number): Promise<GeoReadResult> {
    const home = this.network.homeOf(ref, this.context.region);
    await this.travel(this.context.region, home);
    const log = this.logOf(ref, false);
    const { events, truncated } = log.after(afterSeq, limit);
    const result = { epoch: log.epoch, events, truncated, lastSeq: log.lastSeq };
    await this.travel(home, this.context.region);
    return result;
  }

  async head(ref: GeoLogRef): Promise<GeoLogHead> {
    const home = this.network.homeOf(ref, this.context.region);
    await this.travel(this.context.region, home);
    const log = this.logOf(ref, false);
    const head = { epoch: log.epoch, firstSeq: log.firstSeq, lastSeq: log.lastSeq };
    await this.travel(home, this.context.region);
    return head;
  }

  tail(
    ref: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): Promise<GeoSubscription> {
    return settle(() => this.openTail(ref, afterSeq, onEvent, onError));
  }

  publishEphemeral(ref: GeoLogRef, envelope: GeoEnvelopeDraft): Promise<void> {
    return settle(() => {
      this.assertUsable();
      const from = this.context.region;
      // Fire and forget: at-most-once, like the real brokers' pub/sub path.
      setTimeout(
        () => this.network.publishEphemeral(ref, envelope),
        this.network.delay(from, this.network.homeOf(ref, this.context.region)),
      );
    });
  }

  subscribeEphemeral(ref: GeoLogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): Promise<GeoSubscription> {
    return settle(() => this.openEphemeral(ref, onEvent));
  }

  home(room: string): Promise<GeoRoomHome> {
    return settle(() => {
      this.assertUsable();
      return this.network.roomHome(room);
    });
  }

  /** Moves a room's home (per-room placement only; the option `home` fixes every room's). */
  async move(room: string, region: string): Promise<GeoRoomHome> {
    this.assertUsable();
    if (this.network.placement === 'fixed') throw new GeoConfigError('memory network with `home`: every room lives there, none moves');
    if (!this.context.regions.includes(region))
      throw new GeoConfigError(`cannot move room "${room}" to "${region}": not one of ${this.context.regions.join(', ')}`);
    const from = this.network.homeOf(globalLog(room), this.context.region);
    await this.travel(this.context.region, from);
    const home = this.network.move(room, region);
    await this.travel(from, this.context.region);
    return home;
  }

  async deleteLog(ref: GeoLogRef): Promise<void> {
    await this.travel(this.context.region, this.network.homeOf(ref, this.context.region));
    this.network.deleteLog(ref);
  }

  close(): Promise<void> {
    return settle(() => {
      this.closed = true;
      this.connected = false;
      for (const stop of [...this.subscriptions]) stop();
    });
  }

  private openTail(
    ref: GeoLogRef,
    afterSeq: number,
    onEvent: (event: GeoLoggedEnvelope) => void,
    onError?: (error: Error) => void,
  ): GeoSubscription {
    this.assertUsable();
    // A room its placement names a region for gets its home at its first join.
    const named = ref.scope === 'global' ? this.context.placeOnJoin?.(ref.room) : undefined;
    if (named) this.network.place(ref, named);
    const log = this.logOf(ref);
    // Asked per event: a room with no home yet when the tail opened gets one at its first append.
    const delay = () => this.network.delay(this.network.homeOf(ref, this.context.region), this.context.region);
    let expected = afterSeq + 1;
    const queue = new DelayedQueue<GeoLoggedEnvelope>((event) => {
      if (event.seq !== expected) return; // never repeat, never skip silently
      expected++;
      onEvent(event);
    });
    // Backlog and live listener are taken in the same tick, so nothing falls between them.
    const backlog = log.after(afterSeq);
    if (backlog.truncated) {
      // Retryable: the caller reads again from the first retained event (a join says `recovered: false`).
      throw new GeoTransportUnavailableError(`cannot tail room "${ref.room}" after seq ${afterSeq}: retention removed events after it`);
    }
    for (const event of backlog.events) queue.push(event, delay());
    const unlisten = log.listen((event) => queue.push(event, delay()));
    const unwatchDeletion = log.onDeleted(() => {
      stop();
      onError?.(new GeoTransportUnavailableError(`log of room "${ref.room}" was deleted; its epoch changed`));
    });
    const unwatchIsolation = this.network.onIsolationChange((region, isolated) => {
      if (region !== this.context.region) return;
      if (isolated) queue.hold();
      else queue.release();
    });
    if (this.network.isIsolated(this.context.region)) queue.hold();
    const stop = (): void => {
      unlisten();
      unwatchDeletion();
      unwatchIsolation();
      queue.close();
      this.subscriptions.delete(stop);
    };
    this.subscriptions.add(stop);
    return { close: () => settle(stop) };
  }

  private openEphemeral(ref: GeoLogRef, onEvent: (envelope: GeoEnvelopeDraft) => void): GeoSubscription {
    this.assertUsable();
    const { region } = this.context;
    const queue = new DelayedQueue<GeoEnvelopeDraft>(onEvent);
    const unlisten = this.network.listenEphemeral(ref, (envelope) => {
      if (!this.network.isIsolated(region)) queue.push(envelope, this.network.delay(this.network.homeOf(ref, region), region));
    });
    const stop = (): void => {
      unlisten();
      queue.close();
      this.subscriptions.delete(stop);
    };
    this.subscriptions.add(stop);
    return { close: () => settle(stop) };
  }

  /** The log's current incarnation; `keep` false for reads, which must not make one stay. */
  private logOf(ref: GeoLogRef, keep = true): MemoryLog {
    return this.network.log(ref, this.context.dedupWindowMs, this.context.retention, keep);
  }

  private assertUsable(): void {
    if (!this.connected || this.closed) {
      throw new GeoTransportUnavailableError(`memory transport of region "${this.context.region}" is not connected`);
    }
    if (this.network.isIsolated(this.context.region)) {
      throw new GeoTransportUnavailableError(`region "${this.context.region}" is isolated from the log`);
    }
  }

  /** Simulates one trip over the inter-region link; fails if either end is cut off. */
  private async travel(from: string, to: string): Promise<void> {
    this.assertUsable();
    const delay = this.network.delay(from, to);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    this.assertUsable();
  }
}
