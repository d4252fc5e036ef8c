import { GeoClientError } from '../errors.js';
import type { GeoClientOptions } from '../geo-client-options.js';
import type { GeoRegion } from '../protocol.js';
import { httpProbe, rankRegions, type RankedRegion } from './nearest-region.js';
import { checkRegions } from './regions.js';

/**
 * The regions in failover order, and the one the dialer uses now. The ranking comes from
 * RTT probes (or the `regionOrder`/`pinRegion` options); a failover moves to the next and
 * re-ranks the others in the background; a draining region names where to go.
 */
export class RegionList {
  private regions: RankedRegion[] = [];
  private index = 0;
  /** The URL a draining region suggested, for the next attempt only (when no other region is known). */
  private redirect: string | undefined;

  constructor(
    /** `probe`, `probeSamples`, `pinRegion`, `regionOrder`: read when used. */
    private readonly options: GeoClientOptions,
    /** Aborted by `close()`: probes stop, and a ranking that ends after it is not used. */
    private readonly lifetime: AbortSignal,
  ) {}

  /** In failover order, with their measured RTT. */
  get ranked(): readonly RankedRegion[] {
    return this.regions;
  }

  get count(): number {
    return this.regions.length;
  }

  /** The region of the next (or current) attempt. */
  get current(): RankedRegion {
    return this.regions[this.index];
  }

  /** Reads `GET /geo/regions` from `directoryUrl` (aborted by `close()`; then no regions). */
  async readDirectory(directoryUrl: string): Promise<GeoRegion[]> {
    const url = `${directoryUrl}/geo/regions`;
    let body: unknown;
    try {
      const response = await fetch(url, { cache: 'no-store', signal: this.lifetime });
      if (!response.ok) throw new Error(`answered HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      if (this.lifetime.aborted) return [];
      throw new GeoClientError('UNAVAILABLE', `GeoClient: could not read the region directory ${url}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return checkRegions((body as { regions?: unknown } | null)?.regions, url);
  }

  /** Ranks the directory for the first connection: by RTT, or as `regionOrder` or `pinRegion` say. */
  rank(directory: GeoRegion[]): Promise<RankedRegion[]> {
    return rankRegions(directory, this.options.probe ?? httpProbe(), {
      samples: this.options.probeSamples,
      order: this.options.regionOrder,
      pin: this.options.pinRegion,
      signal: this.lifetime,
    });
  }

  /** Measures the known regions again (their RTT may have changed), nearest first. */
  remeasure(): Promise<RankedRegion[]> {
    return rankRegions(this.regions, this.options.probe ?? httpProbe(), {
      samples: this.options.probeSamples,
      signal: this.lifetime,
    });
  }

  /** Uses `ranked`, staying in (or else starting at the first) region named `current`. */
  use(ranked: RankedRegion[], current?: string): void {
    this.regions = ranked;
    this.index = Math.max(
      0,
      ranked.findIndex((region) => region.name === current),
    );
  }

  /** Where `name` is in the ranking (-1: not known). */
  indexOf(name: string): number {
    return this.regions.findIndex((region) => region.name === name);
  }

  select(index: number): void {
    this.index = index;
  }

  /**
   * Moves past the region that failed: to the next in the ranking now, and, unless the
   * order is fixed, re-ranks the others in the background for the move after this one.
   */
  failOver(): void {
    const failed = this.regions[this.index].name;
    this.index = (this.index + 1) % this.regions.length;
    if (this.options.pinRegion || this.options.regionOrder) return;
    void this.remeasure().then(
      (ranked) => {
        if (this.lifetime.aborted) return;
        // The failed region goes last whatever it measured; the current one keeps its place.
        this.use(
          [...ranked.filter((region) => region.name !== failed), ...ranked.filter((region) => region.name === failed)],
          this.regions[this.index].name,
        );
      },
      () => undefined,
    );
  }

  /**
   * The region `connected` drains (`geo.reconnect`): the next attempt goes to the nearest
   * other region; only when no other is known, to the URL the server suggests.
   */
  drain(connected: string | undefined, suggestedUrl: string): void {
    const others = this.regions.filter((candidate) => candidate.name !== connected);
    if (others.length > 0) this.index = this.regions.indexOf(others[0]);
    else this.redirect = suggestedUrl;
  }

  /** The WebSocket URL of the next attempt: the current region's, or once a draining region's suggestion. */
  takeUrl(): URL {
    const url = new URL(this.redirect ?? this.current.wsUrl);
    this.redirect = undefined;
    return url;
  }
}
