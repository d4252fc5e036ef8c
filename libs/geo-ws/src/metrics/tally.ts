// Counter series counted in plain numbers between scrapes: the hot path pays an addition,
// prom-client's label hashing is paid once per series at scrape time.

/** A counter series as the hot path sees it. */
export type Child = { inc(value?: number): void };

/**
 * A counter series counted in a plain number and handed to prom-client at scrape time: a
 * prom-client child hashes its labels on every `inc` (~190 ns); this is an addition.
 */
export class Tally implements Child {
  private pending = 0;
  constructor(private readonly series: Child) {}
  inc(value = 1): void {
    this.pending += value;
  }
  flush(): void {
    if (this.pending === 0) return;
    this.series.inc(this.pending);
    this.pending = 0;
  }
}

/** A counter whose series are {@link Tally}s. */
export interface TallyCounter {
  labels(labels: Record<string, string>): Child;
}

/** The tallies of each counter of each registry, flushed by the counter's `collect`. */
const talliesByRegistry = new WeakMap<object, Map<string, Set<Tally>>>();

/** The tallies of counter `name` on `registry` (regions of one process may share a registry). */
export function talliesOf(registry: object, name: string): Set<Tally> {
  let byName = talliesByRegistry.get(registry);
  if (!byName) talliesByRegistry.set(registry, (byName = new Map<string, Set<Tally>>()));
  let tallies = byName.get(name);
  if (!tallies) byName.set(name, (tallies = new Set<Tally>()));
  return tallies;
}
