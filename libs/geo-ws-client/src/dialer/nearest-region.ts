import type { RttProbe } from '../geo-client-options.js';
import type { GeoRegion } from '../protocol.js';

/** How {@link rankRegions} orders regions. */
export interface RankOptions {
  /** Probes per region; the median counts. Default 3. */
  samples?: number;
  /** Regions to use, in this order, instead of ranking by RTT. */
  order?: string[];
  /** Only this region. */
  pin?: string;
  /** Stops probing (the client was closed): no further probe starts, running ones are aborted. */
  signal?: AbortSignal;
}

/** A region with its measured median RTT (`Infinity` when it did not answer). */
export interface RankedRegion extends GeoRegion {
  /** Median RTT of the probes that answered, in ms; `Infinity` for a region that failed most of them. */
  rttMs: number;
}

/**
 * The default probe: times `GET /healthz` with `fetch`, giving up after `timeoutMs`
 * (default 2000). Pass `probe: httpProbe(5000)` for a longer timeout.
 */
export function httpProbe(timeoutMs = 2000): RttProbe {
  return (region, signal) =>
    withDeadline(timeoutMs, signal, async (deadline) => {
      const started = performance.now();
      const response = await fetch(`${region.url}/healthz`, { cache: 'no-store', signal: deadline });
      if (!response.ok) throw new Error(`${region.name}: /healthz answered ${response.status}`);
      await response.arrayBuffer();
      return performance.now() - started;
    });
}

/**
 * Runs `work` with a signal that aborts after `timeoutMs` or when `signal` aborts, and
 * clears its timer and listener when `work` settles (no timer of it outlives the call).
 */
export async function withDeadline<T>(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  work: (deadline: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const abort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted) abort();
  signal?.addEventListener('abort', abort);
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    return await work(controller.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}

function median(values: number[]): number {
  if (values.length === 0) return Infinity;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Orders regions for connecting and failing over: nearest first (lowest median RTT of
 * `samples` probes), regions that did not answer last. `order` or `pin` replace the
 * ranking; RTTs are still measured so the app can show them.
 */
export async function rankRegions(regions: GeoRegion[], probe: RttProbe, options: RankOptions = {}): Promise<RankedRegion[]> {
  const samples = options.samples ?? 3;
  const candidates = options.pin ? regions.filter((region) => region.name === options.pin) : regions;
  if (options.pin && candidates.length === 0)
    throw new Error(`pinned region "${options.pin}" is not in the directory (${regions.map((region) => region.name).join(', ')})`);
  const ranked = await Promise.all(
    candidates.map(async (region) => {
      const rtts: number[] = [];
      for (let i = 0; i < samples && !options.signal?.aborted; i++) rtts.push(await probe(region, options.signal).catch(() => Infinity));
      const answered = rtts.filter(Number.isFinite);
      // A region that failed most probes is treated as down, not as fast.
      return { ...region, rttMs: answered.length * 2 > samples ? median(answered) : Infinity };
    }),
  );
  if (options.order) {
    const position = (name: string) => {
      const index = options.order!.indexOf(name);
      return index === -1 ? Number.MAX_SAFE_INTEGER : index;
    };
    return ranked.sort((a, b) => position(a.name) - position(b.name));
  }
  return ranked.sort((a, b) => a.rttMs - b.rttMs);
}
