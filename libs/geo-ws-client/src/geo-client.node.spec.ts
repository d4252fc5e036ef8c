import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { WebSocket } from 'ws';
import { GeoClient, type GeoClientOptions } from './geo-client.js';
import { GeoClientError } from './errors.js';
import type { GeoRegionOption } from './protocol.js';
import { FakeRegion, TEST_CLIENT_OPTIONS, sleep, startMuteHost, stopWatchingTimers, until, watchTimers, within } from './testing/index.js';

/**
 * Issue #13, "SDK on Node": nothing of a closed client keeps a process alive (close()
 * during connect() too), `regions` is checked, and a missing WebSocket class says what to
 * pass. Refused tokens: dialer/geo-client.refusals.spec.ts.
 */

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
    stopWatchingTimers();
    for (const created of clients.splice(0)) created.close();
    await Promise.all([...fakes.splice(0).map((fake) => fake.close()), ...closers.splice(0).map((close) => close())]);
  });

  describe('A: close() leaves nothing running, also during connect()', () => {
    it('close() while the first connection is being opened: connect() rejects CLOSED at once; no timer left', async () => {
      const mute = await startMuteHost();
      closers.push(mute.close);
      const timers = watchTimers();
      const geo = client({ regions: [mute.region], connectTimeoutMs: 30_000 });
      const connecting = geo.connect();
      await until(() => mute.accepted() === 1, 'the upgrade request');
      expect(timers.active()).toBeGreaterThan(0); // the connect deadline, the welcome deadline, the heartbeat
      geo.close();
      const error = await within(connecting, 500, 'connect() after close()').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({ code: 'CLOSED' });
      expect(geo.state).toBe('closed');
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
      await expect(geo.connect()).rejects.toMatchObject({ code: 'CLOSED' }); // the same promise
    });

    it('close() while the directory is read: the request is aborted and connect() rejects CLOSED', async () => {
      const directory = await httpServer('hang');
      const timers = watchTimers();
      const geo = client({ directoryUrl: directory.url });
      const connecting = geo.connect();
      await until(() => directory.requests.length === 1, 'the directory request');
      geo.close();
      await expect(within(connecting, 500, 'connect() after close()')).rejects.toMatchObject({ code: 'CLOSED' });
      await until(() => directory.requests[0].socket.destroyed, 'the directory request to be aborted', 1000);
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
    });

    it('close() while probing: the probes are aborted, no heartbeat starts, connect() rejects CLOSED', async () => {
      const eu = await region('eu');
      const signals: AbortSignal[] = [];
      const timers = watchTimers();
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
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
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
      const timers = watchTimers();
      const started = Date.now();
      const geo = client({ directoryUrl: directory.url, connectTimeoutMs: 300 });
      const error = await within(geo.connect(), 2000, 'connect()').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({ code: 'TIMEOUT', message: 'GeoClient: no region accepted a connection within 300 ms' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(geo.state).toBe('closed');
      await until(() => directory.requests[0].socket.destroyed, 'the directory request to be aborted', 1000);
      await until(() => timers.active() === 0, 'no timer of the client left', 1000);
    });

    it('close() does not wait 30 s (ws) for a server that does not answer its close frame', async () => {
      const eu = await region('eu');
      const timers = watchTimers();
      const geo = client({ regions: eu.regions });
      await within(geo.connect(), 2000, 'connect()');
      // The server stops reading: the close frame is never answered.
      (eu.connections[0].socket as unknown as { _socket: { pause(): void } })._socket.pause();
      geo.close();
      await until(() => timers.active() === 0, 'ws to drop the socket', 2000);
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
