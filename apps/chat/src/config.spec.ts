import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseRegions, readRegionConfig } from './config.js';

describe('chat config from the environment', () => {
  it('defaults to the three-region demo on the memory transport', () => {
    expect(readRegionConfig({})).toMatchObject({
      region: 'asia',
      port: 3001,
      host: '127.0.0.1',
      transport: 'memory',
      interRegionDelayMs: 40,
      regions: { asia: { url: 'http://127.0.0.1:3001' }, eu: { url: 'http://127.0.0.1:3002' }, us: { url: 'http://127.0.0.1:3003' } },
    });
  });

  it('reads REGION, PORT, GEO_REGIONS and GEO_TRANSPORT', () => {
    const config = readRegionConfig({ REGION: 'eu', PORT: '4000', GEO_REGIONS: 'eu=http://10.0.0.1:80,us=http://10.0.0.2:80', GEO_TRANSPORT: 'memory' });
    expect(config).toMatchObject({ region: 'eu', port: 4000, regions: { eu: { url: 'http://10.0.0.1:80' } } });
  });

  it.each([
    [{ REGION: 'mars' }, /REGION "mars" is not in GEO_REGIONS/],
    [{ GEO_TRANSPORT: 'kafka' }, /GEO_TRANSPORT must be memory, nats or redis/],
    [{ PORT: 'eighty' }, /PORT must be a non-negative integer/],
    [{ GEO_REGIONS: 'eu' }, /"eu" is not name=url/],
  ])('refuses %j', (env, message) => {
    expect(() => readRegionConfig(env)).toThrow(ConfigError);
    expect(() => readRegionConfig(env)).toThrow(message);
  });

  it('reads per-region broker URLs', () => {
    const env = { REGION: 'eu', GEO_TRANSPORT: 'redis', GEO_REDIS_REPLICA_URL: 'eu=redis://r-eu:6379,us=redis://r-us:6379', GEO_NATS_URL: 'eu=nats://n-eu:4222,us=nats://n-us:4222' };
    expect(readRegionConfig(env)).toMatchObject({ redis: { url: 'redis://127.0.0.1:6379', replicaUrl: 'redis://r-eu:6379' }, nats: { url: 'nats://n-eu:4222' } });
    expect(readRegionConfig({ ...env, REGION: 'asia', GEO_NATS_URL: 'nats://one:4222' }).redis.replicaUrl).toBeUndefined();
    expect(() => readRegionConfig({ ...env, REGION: 'asia' })).toThrow('GEO_NATS_URL has no entry for region "asia"');
  });

  it('keeps "=" inside URLs', () => {
    expect(parseRegions('eu=http://h/?a=b')).toEqual({ eu: { url: 'http://h/?a=b' } });
  });
});
