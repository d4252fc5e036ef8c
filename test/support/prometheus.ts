import parsePrometheusTextFormat, { type PrometheusFamily, type PrometheusSample } from 'parse-prometheus-text-format';

/**
 * One scrape of a `/metrics` endpoint, parsed by a Prometheus text-format parser (not by
 * the code under test): it throws on a line that is not valid exposition format.
 * The parser folds a histogram's labelled series into one unlabelled sample, so the
 * series are read from a second parse with histograms typed `untyped`: there `x_bucket`,
 * `x_sum` and `x_count` are plain labelled series, as Prometheus stores them.
 */
export class Scrape {
  private constructor(
    /** Families as typed by the exposition (`type` is COUNTER, GAUGE, HISTOGRAM...). */
    readonly families: PrometheusFamily[],
    /** Every series by its stored name (`x_count`, `x_bucket`...), with its labels. */
    private readonly series: PrometheusFamily[],
    readonly contentType: string,
  ) {}

  static async of(url: string): Promise<Scrape> {
    const response = await fetch(url);
    if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status}`);
    const text = await response.text();
    return new Scrape(
      parsePrometheusTextFormat(text),
      parsePrometheusTextFormat(text.replace(/^(# TYPE \S+) histogram$/gm, '$1 untyped')),
      response.headers.get('content-type') ?? '',
    );
  }

  family(name: string): PrometheusFamily {
    const family = this.families.find((candidate) => candidate.name === name);
    if (!family) throw new Error(`no metric ${name} in the scrape (${this.families.map((f) => f.name).join(', ')})`);
    return family;
  }

  /** Sum of the samples of a series whose labels include `labels` (0 when there are none). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((sum, sample) => sum + Number(sample.value), 0);
  }

  /** A histogram's observation count over the series whose labels include `labels`. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_count`, labels);
  }

  /** Observations at or below `le` (one bucket of a histogram), over the series whose labels include `labels`. */
  bucket(name: string, le: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_bucket`, { ...labels, le });
  }

  /** The series of a metric whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): PrometheusSample[] {
    // Untyped, one histogram's series come back as one family per run of lines of a name.
    return this.series
      .filter((family) => family.name === name)
      .flatMap((family) => family.metrics)
      .filter((sample) => Object.entries(labels).every(([label, value]) => sample.labels?.[label] === value));
  }
}
