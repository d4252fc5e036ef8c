import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { WebSocket } from 'ws';
import { GeoClient, type GeoClientOptions } from './geo-client.js';
import { GeoClientError } from './errors.js';
import type { GeoRegionOption, WebSocketConstructor, WebSocketLike } from './protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, sleep, startMuteHost, until, within } from './testing/fake-region.js';

/**
 * Issue #13, "SDK on Node": nothing of a closed client keeps a process alive (close()
 * during connect() too), refused tokens surface at once as typed errors (with `ws`, and
 * through the handshake check with WebSocket classes that cannot read the HTTP status),
 * `regions` is checked, and a missing WebSocket class says what to pass.
 */

/** Timers that keep the process alive (unref'd ones do not count). */
const activeTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

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
  const closers: (() => Promise<void>)[] = [];
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

  /** An HTTP server answering every request with `answer` (or never, with `'hang'`), closed after the test. */
  const httpServer = async (answer: 'hang' | ((response: http.ServerResponse) => void)) => {
    const requests: http.IncomingMessage[] = [];
    const server = http.createServer((request, response) => {
      requests.push(request);
      if (answer !== 'hang') answer(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
  };

  afterEach(async () => {
    for (const created of clients.splice(0)) created.close();
    await Promise.all([...fakes.splice(0).map((fake) => fake.close()), ...closers.splice(0).map((close) => close())]);
  });

  describe('A: close() leaves nothing running, also during connect()', () => {
    it('close() while the first connection is being opened: connect() rejects CLOSED at once; no timer left', async () => {
      const mute = await startMuteHost();
      closers.push(mute.close);
      const before = activeTimers();
      const geo = client({ regions: [mute.region], connectTimeoutMs: 30_000 });
      const connecting = geo.connect();
      await until(() => mute.accepted() === 1, 'the upgrade request');
      expect(activeTimers()).toBeGreaterThan(before); // the connect deadline, the welcome deadline, the heartbeat
      geo.close();
      const error = await within(connecting, 500, 'connect() after close()').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({ code: 'CLOSED' });
      expect(geo.state).toBe('closed');
      await until(() => activeTimers() <= before, 'no timer of the client left', 1000);
      await expect(geo.connect()).rejects.toMatchObject({ code: 'CLOSED' }); // the same promise
    });

    it('close() while the directory is read: the request is aborted and connect() rejects CLOSED', async () => {
      const directory = await httpServer('hang');
      const before = activeTimers();
      const geo = client({ directoryUrl: directory.url });
      const connecting = geo.connect();
      await until(() => directory.requests.length === 1, 'the directory request');
      geo.close();
      await expect(within(connecting, 500, 'connect() after close()')).rejects.toMatchObject({ code: 'CLOSED' });
      await until(() => directory.requests[0].socket.destroyed, 'the directory request to be aborted', 1000);
      await until(() => activeTimers() <= before, 'no timer of the client left', 1000);
    });

    it('close() while probing: the probes are aborted, no heartbeat starts, connect() rejects CLOSED', async () => {
      const eu = await region('eu');
      const signals: AbortSignal[] = [];
      const before = activeTimers();
      const geo = client({
        regions: eu.regions,
        probe: (_region, signal) =>
          new Promise<number>((_resolve, reject) => {
            signals.push(signal!);
            signal!.addEventListener('abort', () => reject(new Error('aborted')));
          }),
      });
      const connecting = geo.connect();
      await until(() => signals.length === 1, 'the first probe');
      geo.close();
      await expect(within(connecting, 500, 'connect() after close()')).rejects.toMatchObject({ code: 'CLOSED' });
      expect(signals.every((signal) => signal.aborted)).toBe(true);
      await sleep(20);
      expect(signals).toHaveLength(1); // no further sample was started
      await until(() => activeTimers() <= before, 'no timer of the client left', 1000);
      expect(eu.connections).toHaveLength(0);
    });

    it('close() while drift-back probes run: they are aborted', async () => {
      const eu = await region('eu');
      const signals: AbortSignal[] = [];
      let calls = 0;
      const geo = client({
        regions: eu.regions,
        probeSamples: 1,
        driftBackMs: 20,
        probe: (_region, signal) =>
          ++calls === 1
            ? Promise.resolve(1)
            : new Promise<number>((_resolve, reject) => {
                signals.push(signal!);
                signal!.addEventListener('abort', () => reject(new Error('aborted')));
              }),
      });
      await within(geo.connect(), 2000, 'connect()');
      await until(() => signals.length === 1, 'a drift-back probe');
      geo.close();
      expect(signals[0].aborted).toBe(true);
    });

    it('the connect deadline covers reading the directory and probing: TIMEOUT (typed), nothing left running', async () => {
      const directory = await httpServer('hang');
      const before = activeTimers();
      const started = Date.now();
      const geo = client({ directoryUrl: directory.url, connectTimeoutMs: 300 });
      const error = await within(geo.connect(), 2000, 'connect()').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({ code: 'TIMEOUT', message: 'GeoClient: no region accepted a connection within 300 ms' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(geo.state).toBe('closed');
      await until(() => directory.requests[0].socket.destroyed, 'the directory request to be aborted', 1000);
      await until(() => activeTimers() <= before, 'no timer of the client left', 1000);
    });

    it('close() does not wait 30 s (ws) for a server that does not answer its close frame', async () => {
      const eu = await region('eu');
      const before = activeTimers();
      const geo = client({ regions: eu.regions });
      await within(geo.connect(), 2000, 'connect()');
      // The server stops reading: the close frame is never answered.
      (eu.connections[0].socket as unknown as { _socket: { pause(): void } })._socket.pause();
      geo.close();
      await until(() => activeTimers() <= before, 'ws to drop the socket', 2000);
    });
  });

  describe('B: a refused token surfaces at once, typed (ws reads the HTTP status)', () => {
    it('HTTP 401 with a fixed token: connect() rejects UNAUTHORIZED at once, naming the region and the reason; one attempt; nothing left running', async () => {
      const eu = await region('eu');
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'a valid token is required' });
      const before = activeTimers();
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
      await until(() => activeTimers() <= before, 'no timer of the client left', 1000);
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
      const geo = client({ regions: eu.regions, token: 'soon-expired' });
      await within(geo.connect(), 2000, 'connect()');
      await geo.join('r', () => undefined);
      eu.answer = () => 'silent';
      const waiting = geo.publish('r', 'chat.message', { text: 'x' });
      const errors: { code: string; message: string }[] = [];
      const states: string[] = [];
      geo.on('error', (error) => errors.push(error));
      geo.on('state', (state) => states.push(state));
      const before = activeTimers();
      eu.refuse = () => ({ status: 401, code: 'UNAUTHORIZED', message: 'the token expired' });
      eu.dropAll();
      await expect(within(waiting, 2000, 'the waiting publish')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      expect(errors).toEqual([
        { code: 'UNAUTHORIZED', message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): the token expired' },
      ]);
      expect(states.at(-1)).toBe('closed');
      await sleep(200);
      expect(eu.refusedTokens).toEqual(['soon-expired']);
      await until(() => activeTimers() < before, 'no timer of the client left (the heartbeat is gone too)', 1000);
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

  describe('C: regions are checked', () => {
    const bad: [string, unknown, RegExp][] = [
      [
        'not an array',
        { eu: 'http://eu' },
        /^GeoClient: regions must be a non-empty array of \{ name, url, wsUrl\? \}, got \{"eu":"http:\/\/eu"\}$/,
      ],
      ['empty', [], /regions must be a non-empty array/],
      [
        'an entry that is no object',
        ['http://eu'],
        /^GeoClient: regions\[0\] must be an object \{ name, url, wsUrl\? \}, got "http:\/\/eu"$/,
      ],
      ['no name', [{ url: 'http://eu' }], /^GeoClient: regions\[0\]\.name must be a non-empty string, got undefined$/],
      [
        'a duplicate name',
        [
          { name: 'eu', url: 'http://eu' },
          { name: 'eu', url: 'http://eu2' },
        ],
        /^GeoClient: regions\[1\]\.name "eu" is a duplicate of regions\[0\]: region names must be unique$/,
      ],
      [
        'no url',
        [{ name: 'eu', wsUrl: 'ws://eu/ws' }],
        /^GeoClient: regions\[0\] \("eu"\)\.url must be an absolute http: or https: URL .*got undefined$/,
      ],
      ['a relative url', [{ name: 'eu', url: '/eu' }], /regions\[0\] \("eu"\)\.url must be an absolute http: or https: URL/],
      ['a ws: url', [{ name: 'eu', url: 'ws://eu' }], /regions\[0\] \("eu"\)\.url must be an absolute http: or https: URL/],
      [
        'an http: wsUrl',
        [{ name: 'eu', url: 'http://eu', wsUrl: 'http://eu/ws' }],
        /regions\[0\] \("eu"\)\.wsUrl must be an absolute ws: or wss: URL .*got "http:\/\/eu\/ws"$/,
      ],
      ['a wsUrl that is no URL', [{ name: 'eu', url: 'http://eu', wsUrl: 'eu/ws' }], /\.wsUrl must be an absolute ws: or wss: URL/],
    ];

    it.each(bad)('%s: INVALID_OPTIONS from the constructor, and from the static connect()', async (_case, regions, message) => {
      let thrown: unknown;
      try {
        new GeoClient({ ...TEST_CLIENT_OPTIONS, regions: regions as GeoRegionOption[] });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(GeoClientError);
      expect(thrown).toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringMatching(message) });
      await expect(GeoClient.connect({ ...TEST_CLIENT_OPTIONS, regions: regions as GeoRegionOption[] })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
      });
    });

    it('neither regions nor directoryUrl, a directoryUrl that is no http(s) URL, an unknown pinRegion: INVALID_OPTIONS', () => {
      expect(() => new GeoClient({ ...TEST_CLIENT_OPTIONS })).toThrow(/give directoryUrl .* or regions/);
      expect(() => new GeoClient({ ...TEST_CLIENT_OPTIONS, directoryUrl: 'eu.chat.example' })).toThrow(
        /directoryUrl must be an absolute http: or https: URL/,
      );
      expect(() => new GeoClient({ ...TEST_CLIENT_OPTIONS, regions: [{ name: 'eu', url: 'http://eu' }], pinRegion: 'us' })).toThrow(
        'GeoClient: pinRegion "us" is not in regions (eu)',
      );
    });

    it('a region given with url only gets the WebSocket URL the server derives (ws:, + /ws) and connects', async () => {
      const eu = await region('eu');
      const geo = client({ regions: [{ name: 'eu', url: `${eu.region.url}/` }] });
      await within(geo.connect(), 2000, 'connect()');
      expect(geo.rankedRegions.map(({ name, url, wsUrl }) => ({ name, url, wsUrl }))).toEqual([eu.region]);
      expect(eu.connections[0].url.pathname).toBe('/ws');
    });

    it('a directory (GET /geo/regions) with a malformed entry: INVALID_OPTIONS naming the directory URL', async () => {
      const directory = await httpServer((response) => response.end(JSON.stringify({ region: 'eu', regions: [{ name: 'eu' }] })));
      const geo = client({ directoryUrl: directory.url });
      await expect(within(geo.connect(), 2000, 'connect()')).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringContaining(`${directory.url}/geo/regions[0] ("eu").url must be an absolute http: or https: URL`),
      });
    });
  });

  describe('D: the WebSocket class', () => {
    it('no WebSocket option and no global WebSocket (Node < 22): INVALID_OPTIONS at once, saying in one line what to pass', () => {
      const global = globalThis as { WebSocket?: unknown };
      const saved = global.WebSocket;
      delete global.WebSocket;
      try {
        let thrown: unknown;
        try {
          new GeoClient({ regions: [{ name: 'eu', url: 'http://127.0.0.1:9' }] });
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(GeoClientError);
        expect(thrown).toMatchObject({
          code: 'INVALID_OPTIONS',
          message: `GeoClient: this runtime has no global WebSocket (Node ${process.versions.node} < 22): pass { WebSocket } from the "ws" package: import { WebSocket } from 'ws'`,
        });
        expect((thrown as Error).message).not.toContain('\n');
      } finally {
        if (saved !== undefined) global.WebSocket = saved;
      }
    });

    it("ws's WebSocket class fits the option as it is, without a cast (npm run typecheck checks this file)", async () => {
      const eu = await region('eu');
      const options: GeoClientOptions = { regions: eu.regions, probe: async () => 1, WebSocket };
      const geo = client(options);
      await within(geo.connect(), 2000, 'connect()');
      expect(geo.state).toBe('open');
    });

    it('the global WebSocket is used when none is passed', async () => {
      const eu = await region('eu');
      const global = globalThis as { WebSocket?: unknown };
      const saved = global.WebSocket;
      global.WebSocket = WebSocket;
      try {
        const geo = new GeoClient({ regions: eu.regions, probe: async () => 1 });
        clients.push(geo);
        await within(geo.connect(), 2000, 'connect()');
        expect(geo.state).toBe('open');
      } finally {
        global.WebSocket = saved;
      }
    });

    it('binary frames are read as UTF-8 text (undici and browsers hand them over as bytes)', async () => {
      const eu = await region('eu');
      const geo = client({ regions: eu.regions });
      await within(geo.connect(), 2000, 'connect()');
      const seen: unknown[] = [];
      await geo.join('r', (event) => seen.push(event.data));
      const event = {
        event_id: 'b1',
        room_id: 'r',
        type: 'chat.message',
        sender: 's',
        timestamp: '',
        region: 'eu',
        seq: 1,
        data: { text: 'ünïcode' },
      };
      eu.connections[0].socket.send(Buffer.from(JSON.stringify({ event: 'chat.message', data: event })), { binary: true });
      await until(() => seen.length === 1, 'the binary frame');
      expect(seen).toEqual([{ text: 'ünïcode' }]);
    });
  });
});
