import { describe, expect, it } from '@jest/globals';
import { GeoConfigError } from '../errors/geo-config.error.js';
import { resolveMetricsOptions } from './geo-metrics.options.js';

describe('resolveMetricsOptions', () => {
  it('is off unless asked for', () => {
    expect(resolveMetricsOptions(undefined)).toBeUndefined();
    expect(resolveMetricsOptions(false)).toBeUndefined();
  });

  it('true: the default registry at /metrics, geows_ names, reports every 30 s', () => {
    expect(resolveMetricsOptions(true)).toEqual({ path: '/metrics', registry: undefined, prefix: 'geows_', reportMs: 30_000 });
  });

  it('path: false registers without serving', () => {
    expect(resolveMetricsOptions({ path: false })?.path).toBe(false);
  });

  it.each([
    [{ path: 'metrics' }, 'metrics.path must start with "/"'],
    [{ prefix: 'geo-ws' }, 'metrics.prefix must be a Prometheus name prefix'],
    [{ reportMs: 10 }, 'metrics.reportMs must be an integer of at least 1000'],
    [{ registry: {} as never }, 'metrics.registry must be a prom-client Registry'],
  ])('refuses %j at boot with a message that says what to change', (options, message) => {
    expect(() => resolveMetricsOptions(options)).toThrow(GeoConfigError);
    expect(() => resolveMetricsOptions(options)).toThrow(message);
  });
});
