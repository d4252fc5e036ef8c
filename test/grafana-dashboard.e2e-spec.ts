import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { GeoMetrics } from '@geo-ws/nest';
import { resolveMetricsOptions } from '../libs/geo-ws/src/metrics/geo-metrics.options.js';

const run = promisify(execFile);

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

const DASHBOARD = new URL('../docker/grafana/geo-ws.dashboard.json', import.meta.url);
const PROMETHEUS_CONFIG = new URL('../docker/prometheus/prometheus.yml', import.meta.url);
const COMPOSE_NATS = new URL('../docker/compose.nats.yml', import.meta.url);

/** The metrics the plugin registers, by name and type, on a registry of their own. */
async function registered(): Promise<{ names: Map<string, string>; text: string }> {
  const registry = new Registry();
  const metrics = await GeoMetrics.create(resolveMetricsOptions({ registry, path: false })!, 'eu', ['eu', 'us']);
  // One sample of each labelled family, so the exposition promtool lints has series in it.
  metrics.watch({ connections: () => 1, memberships: () => ({ memberships: 1, rooms: 1 }), transportReady: () => true }, 'memory');
  metrics.frameReceived('geo.join', 'json');
  metrics.frameSent('geo.joined', 'json', 64);
  metrics.delivered({ type: 'geo.other', region: 'us', timestamp: new Date().toISOString() }, 2, 100, 'json', true);
  metrics.refused('REJECTED');
  metrics.upgradeRefused(401, 'UNAUTHORIZED');
  metrics.stateOperation('putSession', true);
  const names = new Map((await registry.getMetricsAsJSON()).map((metric) => [metric.name, String(metric.type)]));
  return { names, text: await registry.metrics() };
}

/** Every `geows_*` series a PromQL expression reads. */
function seriesOf(expr: string): string[] {
  return [...expr.matchAll(/\bgeows_[a-z0-9_]+/g)].map((match) => match[0]);
}

/** Grafana's variables, as Prometheus would see them once Grafana substituted them. */
function asPromQL(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$region', '.*');
}

const promtool = await run('promtool', ['--version']).then(
  () => true,
  () => false,
);

/**
 * docker/grafana/geo-ws.dashboard.json cannot drift from the code: it parses, each of its
 * queries reads only metrics the plugin registers (histogram series only of histograms),
 * and its PromQL parses (`promtool check rules`). The plugin's exposition passes
 * Prometheus's own lint (`promtool check metrics`: names, units, `_total` on counters).
 */
describe('the Grafana dashboard and the registered metrics', () => {
  it('parses, and every metric its queries read is registered by the plugin', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[] };
    expect(dashboard.uid).toBe('geo-ws');
    const { names } = await registered();
    const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(12);
    const read = new Set(exprs.flatMap(seriesOf));
    for (const series of read) {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(series);
      if (histogram && names.get(histogram[1]) === 'histogram') continue;
      expect({ series, registered: names.has(series) }).toEqual({ series, registered: true });
    }
    // Every family the plugin registers has a panel (those the dashboard does not chart are listed here).
    const charted = new Set([...read].map((series) => series.replace(/_(bucket|sum|count)$/, '')));
    expect([...names.keys()].filter((name) => !charted.has(name))).toEqual([]);
  });

  it('docker/compose.nats.yml: Prometheus scrapes every region`s app, Grafana loads this dashboard', async () => {
    const compose = await readFile(COMPOSE_NATS, 'utf8');
    const apps = [...compose.matchAll(/^ {2}(chat-[a-z]+):$/gm)].map((match) => match[1]);
    expect(apps).toHaveLength(3);
    expect(compose).toMatch(/^ {2}GEO_METRICS: '1'$/m);
    const targets = /targets: \[([^\]]*)\]/.exec(await readFile(PROMETHEUS_CONFIG, 'utf8'))![1];
    expect(targets.split(',').map((target) => target.trim().replace(/'/g, ''))).toEqual(apps.map((app) => `${app}:3000`));
    expect(compose).toContain('./grafana/geo-ws.dashboard.json:/var/lib/grafana/dashboards/geo-ws.dashboard.json:ro');
    if (promtool) {
      const check = await run('promtool', ['check', 'config', PROMETHEUS_CONFIG.pathname]);
      expect(check.stdout).toContain('SUCCESS');
    }
  });

  (promtool ? it : it.skip)('lints the exposition and the queries with promtool', async () => {
    const { text } = await registered();
    const dir = await mkdtemp(join(tmpdir(), 'geo-ws-dashboard-'));
    try {
      const metricsFile = join(dir, 'metrics.txt');
      await writeFile(metricsFile, text);
      const lint = await run('bash', ['-c', `promtool check metrics < ${metricsFile}`]);
      expect(`${lint.stdout}${lint.stderr}`).toBe('');
      const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] };
      const rules = dashboard.panels
        .flatMap((panel) => (panel.targets ?? []).map((target) => asPromQL(target.expr)))
        .map((expr, i) => `      - record: geows:dashboard_query_${i}\n        expr: ${JSON.stringify(expr)}`);
      const rulesFile = join(dir, 'rules.yml');
      await writeFile(rulesFile, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const check = await run('promtool', ['check', 'rules', rulesFile]);
      expect(check.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
