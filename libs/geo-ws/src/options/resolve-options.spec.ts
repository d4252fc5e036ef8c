import { describe, expect, it } from '@jest/globals';
import { GeoConfigError } from '../errors/geo-config.error.js';
import { memoryTransport } from '../transport/memory/memory.transport.js';
import { resolveOptions } from './resolve-options.js';

describe('resolveOptions', () => {
  const base = {
    region: 'eu',
    regions: { eu: 'https://eu.example.com/', us: { url: 'http://us.example.com:8080' } },
    transport: memoryTransport(),
  };

  it('applies documented defaults', () => {
    const resolved = resolveOptions(base);
    expect(resolved.path).toBe('/ws');
    expect(resolved.limits).toEqual({
      maxPayloadBytes: 65536,
      maxDepth: 32,
      maxRoomsPerConnection: 100,
      maxConnectionsPerUser: 20,
      maxEventLoopDelayMs: 1000,
      rate: { perSecond: 50, burst: 100 },
      refusals: { perSecond: 10, burst: 500 },
      idleTimeoutMs: 900_000,
      maxBufferedBytes: 8 * 1024 * 1024,
      maxBufferedBytesTotal: 256 * 1024 * 1024,
      replay: {
        perConnection: { perSecond: 5000, burst: 10_000 },
        perInstance: { perSecond: 50_000, burst: 100_000 },
        concurrent: 64,
        highWaterBytes: 1024 * 1024,
        recentEvents: 256,
        recentMs: 10_000,
      },
    });
    expect(resolved.log).toEqual({ dedupWindowMs: 120_000, retention: { maxEvents: 10_000, maxAgeMs: 86_400_000 }, replayBatchSize: 500 });
    expect(resolved.drainGraceMs).toBe(6000);
    expect(resolved.heartbeatMs).toBe(30_000);
    expect(resolved.sessions).toEqual({ ttlMs: 3_600_000, loadTimeoutMs: 2000 });
    expect(resolved.presenceTtlMs).toBeUndefined();
    expect(resolved.allowedOrigins).toBeUndefined();
    expect(resolved.compression).toBeUndefined();
  });

  it('compression: off by default, documented defaults when on, bad values refused naming the option', () => {
    expect(resolveOptions({ ...base, compression: false }).compression).toBeUndefined();
    expect(resolveOptions({ ...base, compression: {} }).compression).toEqual({ thresholdBytes: 1024, level: 3 });
    expect(resolveOptions({ ...base, compression: { thresholdBytes: 0, level: 9 } }).compression).toEqual({ thresholdBytes: 0, level: 9 });
    expect(() => resolveOptions({ ...base, compression: { level: 0 } })).toThrow(/compression\.level must be a zlib level from 1/);
    expect(() => resolveOptions({ ...base, compression: { level: 2.5 } })).toThrow(GeoConfigError);
    expect(() => resolveOptions({ ...base, compression: { thresholdBytes: -1 } })).toThrow(
      /compression\.thresholdBytes must be a non-negative integer/,
    );
    expect(() => resolveOptions({ ...base, compression: true as unknown as false })).toThrow(/compression must be false or/);
  });

  it('limits.maxConnectionsPerUser: 20 by default, 0 turns it off, anything but a non-negative integer is refused naming it', () => {
    const limit = (maxConnectionsPerUser: number) =>
      resolveOptions({ ...base, limits: { maxConnectionsPerUser } }).limits.maxConnectionsPerUser;
    expect(limit(1)).toBe(1);
    expect(limit(0)).toBe(0);
    for (const bad of [-1, 2.5, Infinity, Number.NaN]) {
      expect(() => limit(bad)).toThrow(/limits\.maxConnectionsPerUser must be a positive integer \(or 0 to turn the limit off\)/);
    }
  });

  it('refuses a replay budget that is not a positive integer, naming the option', () => {
    expect(() => resolveOptions({ ...base, limits: { replay: { perConnection: { perSecond: 0, burst: 10 } } } })).toThrow(
      new GeoConfigError('limits.replay.perConnection.perSecond must be a positive integer, got 0.'),
    );
  });

  it('keeps a replay below the slow-consumer limit: half of a low maxBufferedBytes, and refuses a high water at or above it', () => {
    expect(resolveOptions({ ...base, limits: { maxBufferedBytes: 64 * 1024 } }).limits.replay.highWaterBytes).toBe(32 * 1024);
    expect(() => resolveOptions({ ...base, limits: { maxBufferedBytes: 64 * 1024, replay: { highWaterBytes: 64 * 1024 } } })).toThrow(
      /limits.replay.highWaterBytes \(65536\) must be below limits.maxBufferedBytes \(65536\)/,
    );
  });

  it('turns the idle timeout and sessions off, presence on, and normalises origins', () => {
    const resolved = resolveOptions({
      ...base,
      limits: { idleTimeoutMs: 0 },
      sessions: false,
      presence: true,
      allowedOrigins: ['https://chat.example/'],
    });
    expect(resolved.limits.idleTimeoutMs).toBe(0);
    expect(resolved.sessions).toBeUndefined();
    expect(resolved.presenceTtlMs).toBe(30_000);
    expect([...resolved.allowedOrigins!]).toEqual(['https://chat.example']);
  });

  it('sessions: loadTimeoutMs is read; the deprecated saveEveryMs is accepted and ignored (saves follow membership changes)', () => {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- an old configuration must still start
    const resolved = resolveOptions({ ...base, sessions: { saveEveryMs: 5000, loadTimeoutMs: 500 } });
    expect(resolved.sessions).toEqual({ ttlMs: 3_600_000, loadTimeoutMs: 500 });
    expect(() => resolveOptions({ ...base, sessions: { loadTimeoutMs: 0 } })).toThrow(/sessions.loadTimeoutMs must be a positive integer/);
  });

  it('derives WebSocket URLs from the region URLs and the path', () => {
    const resolved = resolveOptions({ ...base, path: '/geo' });
    expect(resolved.regions.get('eu')).toEqual({ url: 'https://eu.example.com', wsUrl: 'wss://eu.example.com/geo' });
    expect(resolved.regions.get('us')).toEqual({ url: 'http://us.example.com:8080', wsUrl: 'ws://us.example.com:8080/geo' });
  });

  it('keeps an explicit wsUrl', () => {
    const resolved = resolveOptions({ ...base, regions: { eu: { url: 'https://eu.example.com', wsUrl: 'wss://edge.example.com/x' } } });
    expect(resolved.regions.get('eu')?.wsUrl).toBe('wss://edge.example.com/x');
  });

  it('refuses missing options with the call to write', () => {
    expect(() => resolveOptions(undefined)).toThrow(
      new GeoConfigError('options are required: GeoWsModule.forRoot({ region, regions, transport }).'),
    );
  });

  it('refuses a non-function authenticate', () => {
    expect(() => resolveOptions({ ...base, authenticate: 'yes' as never })).toThrow(/authenticate must be a function/);
  });

  it('gives anonymous principals distinct ids by default', async () => {
    const { authenticate } = resolveOptions(base);
    const a = await authenticate({} as never);
    const b = await authenticate({} as never);
    expect(a?.id).toMatch(/^anon-/);
    expect(a?.id).not.toBe(b?.id);
  });
});

describe('resolveOptions: placement', () => {
  const base = { region: 'eu', regions: { eu: 'http://eu.test', us: 'http://us.test' }, transport: memoryTransport() };

  it('is left to the transport (the appending region) when not given', () => {
    expect(resolveOptions(base).placeRoom).toBeUndefined();
  });

  it('checks each answer: a region of the deployment, or undefined for the appending one; anything else names the room and the answer', () => {
    const { placeRoom } = resolveOptions({
      ...base,
      placement: (room) => (room.startsWith('us:') ? 'us' : room === 'odd' ? 'mars' : undefined),
    });
    expect(placeRoom?.('us:support')).toBe('us');
    expect(placeRoom?.('lobby')).toBe('eu');
    expect(() => placeRoom?.('odd')).toThrow(GeoConfigError);
    expect(() => placeRoom?.('odd')).toThrow(
      'placement returned "mars" for room "odd": it must return one of eu, us, \'auto\', or undefined.',
    );
  });

  it("'auto' places a room in the appending region and makes it follow its traffic, with homeMoves' defaults or its checked values", () => {
    const { placeRoom, homeMoves } = resolveOptions({ ...base, placement: (room) => (room.startsWith('team-') ? 'auto' : 'us') });
    expect(placeRoom?.('team-1')).toBe('eu');
    expect(homeMoves).toMatchObject({ share: 0.6, windowMs: 30_000 });
    expect(homeMoves?.follows('team-1')).toBe(true);
    expect(homeMoves?.follows('lobby')).toBe(false);
    expect(resolveOptions({ ...base, placement: () => 'auto', homeMoves: { share: 0.75, windowMs: 5000 } }).homeMoves).toMatchObject({
      share: 0.75,
      windowMs: 5000,
    });
    expect(() => resolveOptions({ ...base, placement: () => 'auto', homeMoves: { share: 0.4 } })).toThrow(
      'homeMoves.share must be at least 0.5 and below 1',
    );
    expect(() => resolveOptions({ ...base, homeMoves: {} })).toThrow("homeMoves needs a placement that answers 'auto'");
    // A placement that throws never trips delivery: the room is taken as not following.
    const throwing = resolveOptions({
      ...base,
      placement: () => {
        throw new Error('app bug');
      },
    });
    expect(throwing.homeMoves?.follows('x')).toBe(false);
  });

  it('refuses a placement that is not a function at boot', () => {
    expect(() => resolveOptions({ ...base, placement: 'eu' as never })).toThrow(
      'placement must be a function (room, { region, regions }) => region, got string.',
    );
  });
});
