import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import { GeoClientError } from '../errors.js';
import { GeoClient, type GeoClientOptions } from '../geo-client.js';
import type { WebSocketConstructor, WebSocketLike } from '../protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, sleep, stopWatchingTimers, until, watchTimers, within } from '../testing/index.js';

/**
 * Issue #13, "SDK on Node": refused tokens surface at once as typed errors (with `ws`, and
 * through the handshake check with WebSocket classes that cannot read the HTTP status).
 * The rest of the issue: geo-client.node.spec.ts.
 */

/**
 * A WebSocket that cannot tell the HTTP status of a refused upgrade, as in browsers: it
 * only reports an error and a close with 1006 (no `on`, no `'unexpected-response'`).
 */
class StatusBlindWebSocket implements WebSocketLike {
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  private readonly inner: WebSocket;

  constructor(url: string, protocols?: string | string[]) {
    this.inner = new WebSocket(url, protocols);
    this.inner.onopen = (event) => this.onopen?.(event);
    this.inner.onmessage = (event) => this.onmessage?.(event);
    this.inner.onclose = (event) => this.onclose?.(event);
    this.inner.onerror = (event) => this.onerror?.(event);
  }

  get readyState(): number {
    return this.inner.readyState;
  }

  send(data: string): void {
    this.inner.send(data);
  }

  close(code?: number, reason?: string): void {
    this.inner.close(code, reason);
  }
}

describe('GeoClient on Node (issue #13)', () => {
  const fakes: FakeRegion[] = [];
  const clients: GeoClient[] = [];

  const region = async (name = 'eu'): Promise<FakeRegion> => {
    const fake = await FakeRegion.start({ name });
    fakes.push(fake);
    return fake;
  };

  const client = (options: GeoClientOptions): GeoClient => {
    const created = new GeoClient({ ...TEST_CLIENT_OPTIONS, ...options });
    clients.push(created);
    return created;
  };

  afterEach(async () => {
    stopWatchingTimers();
    for (const created of clients.splice(0)) created.close();
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  describe('B: a refused token surfaces at once, typed (ws reads the HTTP status)', () => {
    it('HTTP 401 with a fixed token: connect() rejects UNAUTHORIZED at once, naming the region and the reason; one attempt; nothing left running', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'a valid token is required' });
      const timers = watchTimers();
      const started = Date.now();
      const geo = client({ regions: eu.regions, token: 'expired', connectTimeoutMs: 10_000 });
      const error = await within(geo.connect(), 2000, 'connect()').catch((caught: unknown) => caught);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({
        code: 'UNAUTHORIZED',
        message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): a valid token is required',
      });
      expect(eu.refusedTokens).toEqual(['expired']);
      expect(geo.state).toBe('closed');
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
    });

    it('HTTP 401 with a token function: one more attempt at once with a fresh token, then UNAUTHORIZED', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'a valid token is required' });
      let calls = 0;
      const geo = client({ regions: eu.regions, token: () => `t${++calls}`, connectTimeoutMs: 10_000 });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      expect(eu.refusedTokens).toEqual(['t1', 't2']);
    });

    it('HTTP 401, then the fresh token is accepted: connected', async () => {
      const eu = await region('eu');
      eu.refuse = (token) => (token === 't1' ? { status: 401, code: 'UNAUTHORIZED', message: 'expired' } : undefined);
      let calls = 0;
      const geo = client({ regions: eu.regions, token: () => `t${++calls}` });
      await within(geo.connect(), 2000, 'connect()');
      expect([geo.state, eu.connections.map((connection) => connection.token)]).toEqual(['open', ['t2']]);
    });

    it('HTTP 403: FORBIDDEN at once, no second attempt even with a token function', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 403, code: 'FORBIDDEN', message: 'this token may not be used in region "eu"' });
      const geo = client({ regions: eu.regions, token: () => 'fresh', connectTimeoutMs: 10_000 });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: 'GeoClient: region "eu" refused the connection: FORBIDDEN (HTTP 403): this token may not be used in region "eu"',
      });
      expect(eu.refusedTokens).toEqual(['fresh']);
    });

    it('HTTP 503 (draining, starting) stays a failed attempt: retried until the region accepts', async () => {
      const eu = await region('eu');
      eu.refusing = true;
      const geo = client({ regions: eu.regions, token: 'ok' });
      const connecting = geo.connect();
      await until(() => eu.connections.length === 0 && geo.state === 'reconnecting', 'a refused attempt');
      await sleep(150);
      expect(geo.state).toBe('reconnecting'); // still trying
      eu.resume();
      await within(connecting, 2000, 'connect()');
      expect(geo.state).toBe('open');
    });

    it('HTTP 429 TOO_MANY_CONNECTIONS is not final and no reason to fail over: the same region after a penalty delay that grows, reported as 4008', async () => {
      const [eu, us] = [await region('eu'), await region('us')];
      let refusals = 3;
      eu.refuse = () =>
        refusals-- > 0 ? { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'this user has 20 connections to this server' } : undefined;
      const geo = client({
        regions: [eu.region, us.region],
        regionOrder: ['eu', 'us'],
        token: 'ok',
        failoverAfter: 1,
        backoff: { baseMs: 20, maxMs: 1000 },
      });
      const reconnects: { delayMs: number; region: string; code: number }[] = [];
      geo.on('reconnect', ({ delayMs, region: name, code }) => reconnects.push({ delayMs, region: name, code }));
      await within(geo.connect(), 3000, 'connect()');
      expect(geo.region).toBe('eu');
      expect(us.connections).toHaveLength(0);
      expect(eu.refusedTokens).toEqual(['ok', 'ok', 'ok']);
      expect(reconnects.map(({ region: name, code }) => `${code} ${name}`)).toEqual(['4008 eu', '4008 eu', '4008 eu']);
      const delays = reconnects.map((reconnect) => reconnect.delayMs);
      expect(delays[0]).toBeGreaterThanOrEqual(20);
      expect(delays[1]).toBeGreaterThanOrEqual(40);
      expect(delays[2]).toBeGreaterThanOrEqual(80);
    });

    it('after the first connection, a refused reconnect is reported as error and the client stops (closed): no loop', async () => {
      const eu = await region('eu');
      const timers = watchTimers();
      const geo = client({ regions: eu.regions, token: 'soon-expired' });
      await within(geo.connect(), 2000, 'connect()');
      await geo.join('r', () => undefined);
      eu.answer = () => 'silent';
      const waiting = geo.publish('r', 'chat.message', { text: 'x' });
      const errors: { code: string; message: string }[] = [];
      const states: string[] = [];
      geo.on('error', (error) => errors.push(error));
      geo.on('state', (state) => states.push(state));
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'the token expired' });
      eu.dropAll();
      await expect(within(waiting, 2000, 'the waiting publish')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      expect(errors).toEqual([
        { code: 'UNAUTHORIZED', message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): the token expired' },
      ]);
      expect(states.at(-1)).toBe('closed');
      await sleep(200);
      expect(eu.refusedTokens).toEqual(['soon-expired']);
      await until(() => timers.active() === 0, 'no timer of the client left (the heartbeat is gone too)', 1000);
    });
  });

  describe('E: a WebSocket class that cannot read the HTTP status asks GET /geo/handshake once', () => {
    const blind = StatusBlindWebSocket as unknown as WebSocketConstructor;

    it('401: one check with the same token and query, then UNAUTHORIZED at once', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'a valid token is required' });
      const started = Date.now();
      const geo = client({ regions: eu.regions, WebSocket: blind, token: 'bad', query: { room: 'lobby' }, connectTimeoutMs: 10_000 });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({
        code: 'UNAUTHORIZED',
        message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): a valid token is required',
      });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(eu.refusedTokens).toEqual(['bad']);
      expect(eu.handshakeChecks.map((check) => [check.token, check.query.get('room')])).toEqual([['bad', 'lobby']]);
    });

    it('403: FORBIDDEN', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 403, code: 'FORBIDDEN', message: 'this origin may not open a WebSocket here' });
      const geo = client({ regions: eu.regions, WebSocket: blind, token: 'fine', connectTimeoutMs: 10_000 });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(eu.handshakeChecks).toHaveLength(1);
    });

    it('a region without the endpoint (404): the failed attempts are retried as before, until the deadline', async () => {
      const eu = await region('eu');
      eu.servesHandshakeCheck = false;
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'a valid token is required' });
      const geo = client({ regions: eu.regions, WebSocket: blind, token: 'bad', connectTimeoutMs: 400 });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(eu.refusedTokens.length).toBeGreaterThan(1);
    });

    it('429 TOO_MANY_CONNECTIONS: one check per attempt, then the same region after a penalty delay, not the next region', async () => {
      const [eu, us] = [await region('eu'), await region('us')];
      let full = true;
      eu.refuse = () => (full ? { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many' } : undefined);
      const geo = client({
        regions: [eu.region, us.region],
        regionOrder: ['eu', 'us'],
        WebSocket: blind,
        token: 'ok',
        failoverAfter: 1,
        backoff: { baseMs: 20, maxMs: 1000 },
      });
      const codes: number[] = [];
      geo.on('reconnect', ({ code }) => codes.push(code));
      const connecting = geo.connect();
      await until(() => eu.handshakeChecks.length === 2, 'two refused attempts');
      full = false;
      await within(connecting, 3000, 'connect()');
      expect([geo.region, us.connections.length, codes, eu.handshakeChecks.length]).toEqual(['eu', 0, [4008, 4008], 2]);
    });

    it('503 and a region that accepts the token again: retried, then connected', async () => {
      const eu = await region('eu');
      eu.refusing = true;
      const geo = client({ regions: eu.regions, WebSocket: blind, token: 'ok' });
      const connecting = geo.connect();
      await until(() => eu.handshakeChecks.length >= 1, 'a check');
      eu.resume();
      await within(connecting, 2000, 'connect()');
      expect(geo.state).toBe('open');
    });
  });
});
