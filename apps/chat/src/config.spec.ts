import { describe, expect, it } from '@jest/globals';
import { ConfigError, DEMO_SECRET, demoAuthorityWarning, parseRegions, readRegionConfig } from './config.js';

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
    const config = readRegionConfig({
      REGION: 'eu',
      PORT: '4000',
      GEO_REGIONS: 'eu=http://10.0.0.1:80,us=http://10.0.0.2:80',
      GEO_TRANSPORT: 'memory',
    });
    expect(config).toMatchObject({ region: 'eu', port: 4000, regions: { eu: { url: 'http://10.0.0.1:80' } } });
  });

  it('turns metrics on with GEO_METRICS=1 only', () => {
    expect(readRegionConfig({}).metrics).toBe(false);
    expect(readRegionConfig({ GEO_METRICS: '1' }).metrics).toBe(true);
  });

  it('leaves the buffered-bytes limit to the library unless GEO_MAX_BUFFERED_BYTES is set', () => {
    expect(readRegionConfig({}).maxBufferedBytes).toBeUndefined();
    expect(readRegionConfig({ GEO_MAX_BUFFERED_BYTES: '262144' }).maxBufferedBytes).toBe(262_144);
    expect(readRegionConfig({}).compressionThresholdBytes).toBeUndefined();
    expect(readRegionConfig({ GEO_COMPRESSION_THRESHOLD: '128' }).compressionThresholdBytes).toBe(128);
    expect(() => readRegionConfig({ GEO_MAX_BUFFERED_BYTES: 'lots' })).toThrow('GEO_MAX_BUFFERED_BYTES must be a non-negative integer');
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
    const env = {
      REGION: 'eu',
      GEO_TRANSPORT: 'redis',
      GEO_REDIS_REPLICA_URL: 'eu=redis://r-eu:6379,us=redis://r-us:6379',
      GEO_NATS_URL: 'eu=nats://n-eu:4222,us=nats://n-us:4222',
    };
    expect(readRegionConfig(env)).toMatchObject({
      redis: { url: 'redis://127.0.0.1:6379', replicaUrl: 'redis://r-eu:6379' },
      nats: { url: 'nats://n-eu:4222' },
    });
    expect(readRegionConfig({ ...env, REGION: 'asia', GEO_NATS_URL: 'nats://one:4222' }).redis.replicaUrl).toBeUndefined();
    expect(() => readRegionConfig({ ...env, REGION: 'asia' })).toThrow('GEO_NATS_URL has no entry for region "asia"');
  });

  it('homes each room in its own region on NATS unless GEO_NATS_ROOM_HOMES=0', () => {
    expect(readRegionConfig({ REGION: 'eu' }).nats.roomHomes).toBe(true);
    expect(readRegionConfig({ REGION: 'eu', GEO_NATS_ROOM_HOMES: '0' }).nats.roomHomes).toBe(false);
    expect(() => readRegionConfig({ REGION: 'eu', GEO_NATS_ROOM_HOMES: 'yes' })).toThrow('GEO_NATS_ROOM_HOMES must be 1 or 0, got "yes"');
  });

  it('lets rooms follow their traffic with GEO_PLACEMENT=auto, only on transports that move rooms', () => {
    expect(readRegionConfig({ REGION: 'eu' }).homeMoves).toBeUndefined();
    expect(readRegionConfig({ REGION: 'eu', GEO_PLACEMENT: 'auto', GEO_HOME_MOVE_WINDOW_MS: '5000' }).homeMoves).toEqual({
      windowMs: 5000,
    });
    expect(readRegionConfig({ REGION: 'eu', GEO_TRANSPORT: 'nats', GEO_PLACEMENT: 'auto' }).homeMoves).toEqual({ windowMs: undefined });
    expect(() => readRegionConfig({ REGION: 'eu', GEO_PLACEMENT: 'sometimes' })).toThrow(
      'GEO_PLACEMENT must be first-append, named or auto',
    );
    expect(() => readRegionConfig({ REGION: 'eu', GEO_TRANSPORT: 'redis', GEO_PLACEMENT: 'auto' })).toThrow(
      'it needs GEO_TRANSPORT=memory',
    );
  });

  it('places rooms named "<region>:…" in that region with GEO_PLACEMENT=named, only on transports that place rooms one by one', () => {
    expect(readRegionConfig({ REGION: 'eu' }).namedPlacement).toBe(false);
    const named = readRegionConfig({ REGION: 'eu', GEO_TRANSPORT: 'nats', GEO_PLACEMENT: 'named' });
    expect({ named: named.namedPlacement, homeMoves: named.homeMoves }).toEqual({ named: true, homeMoves: undefined });
    expect(() => readRegionConfig({ REGION: 'eu', GEO_TRANSPORT: 'redis', GEO_PLACEMENT: 'named' })).toThrow(
      'GEO_PLACEMENT=named places room logs in different regions',
    );
  });

  it('keeps "=" inside URLs', () => {
    expect(parseRegions('eu=http://h/?a=b')).toEqual({ eu: { url: 'http://h/?a=b' } });
  });

  describe('secure by default (issue 9, item 6)', () => {
    const PRIVATE = 'a-private-demo-secret-of-at-least-32-bytes';

    it('refuses NODE_ENV=production on the demo authority with its public secret, naming what to set', () => {
      for (const env of [
        { NODE_ENV: 'production' },
        { NODE_ENV: 'production', GEO_AUTH: 'demo' },
        { NODE_ENV: 'production', GEO_AUTH: '', GEO_DEMO_SECRET: '' },
        { NODE_ENV: 'production', GEO_DEMO_SECRET: DEMO_SECRET },
      ]) {
        expect(() => readRegionConfig(env)).toThrow(ConfigError);
        for (const variable of ['NODE_ENV=production', 'GEO_AUTH=jwt', 'GEO_JWKS_URL', 'GEO_JWT_SECRET', 'GEO_DEMO_SECRET'])
          expect(() => readRegionConfig(env)).toThrow(variable);
      }
    });

    it('production runs with a real authority, or the demo on a private secret', () => {
      const jwt = {
        NODE_ENV: 'production',
        GEO_AUTH: 'jwt',
        GEO_JWT_ISSUER: 'https://auth.example',
        GEO_JWT_AUDIENCE: 'chat',
        GEO_JWKS_URL: 'https://auth.example/jwks.json',
      };
      expect(readRegionConfig(jwt)).toMatchObject({ production: true, auth: { mode: 'jwt', jwksUrl: 'https://auth.example/jwks.json' } });
      expect(readRegionConfig({ NODE_ENV: 'production', GEO_DEMO_SECRET: PRIVATE })).toMatchObject({
        production: true,
        auth: { mode: 'demo', secret: PRIVATE, publicSecret: false },
      });
      expect(() => readRegionConfig({ ...jwt, GEO_JWKS_URL: undefined, GEO_JWT_SECRET: DEMO_SECRET })).toThrow(
        "GEO_JWT_SECRET is the demo's public secret",
      );
      expect(() => readRegionConfig({ GEO_DEMO_SECRET: 'short' })).toThrow('GEO_DEMO_SECRET must be at least 32 bytes');
    });

    it('outside production the demo runs on the public secret, with a loud warning', () => {
      const config = readRegionConfig({ REGION: 'eu' });
      expect(config).toMatchObject({
        production: false,
        auth: { mode: 'demo', secret: DEMO_SECRET, publicSecret: true, tokensPerMinute: 30 },
      });
      expect(demoAuthorityWarning(config)).toMatch(/^WARNING: region eu runs the demo token authority.*PUBLIC demo secret.*GEO_AUTH=jwt/);
      expect(demoAuthorityWarning(readRegionConfig({ GEO_DEMO_SECRET: PRIVATE }))).toMatch(/^WARNING: .*GEO_DEMO_SECRET/);
      expect(
        demoAuthorityWarning(readRegionConfig({ GEO_AUTH: 'jwt', GEO_JWT_ISSUER: 'i', GEO_JWT_AUDIENCE: 'a', GEO_JWT_SECRET: PRIVATE })),
      ).toBeUndefined();
      expect(readRegionConfig({ GEO_DEMO_TOKENS_PER_MINUTE: '5' }).auth).toMatchObject({ tokensPerMinute: 5 });
      expect(() => readRegionConfig({ GEO_DEMO_TOKENS_PER_MINUTE: '0' })).toThrow('GEO_DEMO_TOKENS_PER_MINUTE must be at least 1');
    });

    it("allowedOrigins default to the regions' own origins (loopback under each of its names)", () => {
      expect(readRegionConfig({ GEO_REGIONS: 'eu=https://eu.chat.example,us=https://us.chat.example:8443/base' }).allowedOrigins).toEqual([
        'https://eu.chat.example',
        'https://us.chat.example:8443',
      ]);
      expect(readRegionConfig({ GEO_REGIONS: 'eu=http://127.0.0.1:3002' }).allowedOrigins).toEqual([
        'http://127.0.0.1:3002',
        'http://localhost:3002',
        'http://[::1]:3002',
      ]);
    });

    it('GEO_ALLOWED_ORIGINS overrides them; * allows any origin', () => {
      expect(readRegionConfig({ GEO_ALLOWED_ORIGINS: 'https://chat.example, https://www.chat.example/' }).allowedOrigins).toEqual([
        'https://chat.example',
        'https://www.chat.example',
      ]);
      expect(readRegionConfig({ GEO_ALLOWED_ORIGINS: '*' }).allowedOrigins).toBeUndefined();
      expect(() => readRegionConfig({ GEO_ALLOWED_ORIGINS: 'chat.example' })).toThrow('GEO_ALLOWED_ORIGINS: "chat.example" is not a URL');
    });
  });
});
