import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { GeoClientEvents } from '../geo-client-events.js';
import { MIN_REFRESH_WAIT_MS, TokenRefresher } from './token-refresher.js';

/** The refresher alone, on jest's fake clock: when it refreshes, what it sends, what it leaves running. */
describe('TokenRefresher', () => {
  let sent: { event: string; data: unknown }[];
  let errors: GeoClientEvents['error'][];
  let lifetime: AbortController;

  const refresher = (token: string | (() => string | Promise<string>) | undefined): TokenRefresher =>
    new TokenRefresher(
      { token },
      {
        send: (event, data) => {
          sent.push({ event, data });
          return true;
        },
      },
      (event, value) => {
        if (event === 'error') errors.push(value as GeoClientEvents['error']);
      },
      lifetime.signal,
    );

  const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString();

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.parse('2030-01-01T00:00:00Z') });
    sent = [];
    errors = [];
    lifetime = new AbortController();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('with a token function: geo.auth with a fresh token at 80% of the lifetime left', async () => {
    let issued = 0;
    const tokens = refresher(() => `t${++issued}`);
    tokens.schedule(inMs(10_000));
    await jest.advanceTimersByTimeAsync(7_999);
    expect(sent).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([{ event: 'geo.auth', data: { token: 't1' } }]);
    expect(jest.getTimerCount()).toBe(0); // the next one waits for geo.authed's expires_at
  });

  it('not sooner than MIN_REFRESH_WAIT_MS, even for a token about to expire (or expired)', async () => {
    const tokens = refresher(() => 'fresh');
    tokens.schedule(inMs(-5_000));
    await jest.advanceTimersByTimeAsync(MIN_REFRESH_WAIT_MS - 1);
    expect(sent).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(1);
  });

  it('a lifetime longer than setTimeout can wait: the longest wait it takes, not a refresh at once', async () => {
    const tokens = refresher(() => 'fresh');
    tokens.schedule(inMs(365 * 24 * 3_600_000));
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(sent).toHaveLength(0);
    expect(jest.getTimerCount()).toBe(1);
    tokens.stop();
  });

  it.each([
    ['a fixed token', 'fixed', inMs(10_000)],
    ['no token', undefined, inMs(10_000)],
    ['no expiry (expires_at null)', () => 'fresh', null],
  ])('%s: nothing scheduled', (_, token, expiresAt) => {
    refresher(token).schedule(expiresAt);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a new expiry replaces the scheduled refresh: one timer at a time; stop() clears it', () => {
    const tokens = refresher(() => 'fresh');
    tokens.schedule(inMs(10_000));
    tokens.schedule(inMs(20_000));
    expect(jest.getTimerCount()).toBe(1);
    tokens.schedule(null); // geo.authed without expiry
    expect(jest.getTimerCount()).toBe(0);
    tokens.schedule(inMs(10_000));
    tokens.stop();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a failing token function is reported as UNAUTHORIZED; after close() it is not', async () => {
    const tokens = refresher(() => Promise.reject(new Error('auth server down')));
    tokens.schedule(inMs(10_000));
    await jest.advanceTimersByTimeAsync(8_000);
    expect(errors).toEqual([{ code: 'UNAUTHORIZED', message: 'token refresh failed: auth server down' }]);
    tokens.schedule(inMs(10_000));
    await jest.advanceTimersByTimeAsync(7_999);
    lifetime.abort();
    await jest.advanceTimersByTimeAsync(1); // the refresh started before close() fails after it
    expect(errors).toHaveLength(1);
    expect(sent).toEqual([]);
  });
});
