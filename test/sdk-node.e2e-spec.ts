import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { GeoClient, type GeoClientOptions, type GeoEnvelope } from '@geo-ws/client';
import { jwtAuthenticator, type GeoWsModuleOptions } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';
import { deployRegions, type Deployment } from './support/regions.js';
import { signTestToken, TEST_AUDIENCE, TEST_ISSUER } from './support/tokens.js';

/**
 * Issue #13, "SDK on Node", against real regions (Nest apps on real sockets, JWT auth):
 * refused tokens surface at once as typed errors, with `ws` (the refusal's HTTP status)
 * and with Node's own WebSocket (undici, `--experimental-websocket` on Node 20: the
 * handshake check `GET /geo/handshake`); a Node process using the SDK exits by itself
 * after `close()`, also after a refused or abandoned connect; the global WebSocket works
 * without the `WebSocket` option, and its absence is one clear line.
 */

const SECRET = 'a-secret-for-the-sdk-node-e2e-that-is-long-enough';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The built SDK (npm run build), as an app imports it. */
const SDK = pathToFileURL(path.join(ROOT, 'libs/geo-ws-client/dist/index.js')).href;
const WS = pathToFileURL(path.join(ROOT, 'node_modules/ws/wrapper.mjs')).href;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
/** Node's global WebSocket: behind a flag before Node 22, on by default from 22. */
const WITH_GLOBAL_WEBSOCKET = NODE_MAJOR < 22 ? ['--experimental-websocket'] : [];
const WITHOUT_GLOBAL_WEBSOCKET = NODE_MAJOR < 22 ? [] : ['--no-experimental-websocket'];

/**
 * The script a user would write, run in a child `node`: it never calls process.exit, so
 * the child exits only once nothing of the SDK is left running. It prints one JSON line
 * per step; `done` carries the time it finished (close() returned, or connect() rejected).
 */
const SCRIPT = `
import { GeoClient } from ${JSON.stringify(SDK)};
const config = JSON.parse(process.env.SDK_E2E);
const WebSocket = config.ws ? (await import(${JSON.stringify(WS)})).WebSocket : undefined;
const print = (line) => console.log(JSON.stringify(line));
const started = Date.now();
let client;
try {
  const options = { ...config.options, ...(WebSocket ? { WebSocket } : {}) };
  if (config.closeAfterMs === undefined) {
    client = await GeoClient.connect(options);
  } else {
    // A handle before the connection is open, to give up on it.
    client = new GeoClient(options);
    const connecting = client.connect();
    setTimeout(() => client.close(), config.closeAfterMs);
    await connecting;
  }
  print({ step: 'open', region: client.region });
  if (config.room) {
    const seen = [];
    await client.join(config.room, (event) => seen.push(event.data.text));
    const ack = await client.publish(config.room, 'note.add', { text: 'from a child process' });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    print({ step: 'roundtrip', seq: ack.seq, seen });
  }
  client.close();
  print({ step: 'done', at: Date.now() });
} catch (error) {
  print({ step: 'rejected', code: error.code, message: error.message, name: error.name, afterMs: Date.now() - started, state: client?.state });
  print({ step: 'done', at: Date.now() });
}
`;

interface ChildRun {
  code: number | null;
  lines: Record<string, unknown>[];
  stderr: string;
  /** From the script's `done` to the child's exit: what the SDK left running. */
  lingerMs: number;
}

describe('SDK on Node (issue #13) against real regions', () => {
  let deployment: Deployment;
  /** A region with `endpoints: false`: no handshake check. */
  let bare: Deployment;
  /** A host that answers HTTP (probes) and never answers the WebSocket upgrade. */
  let mute: http.Server;
  let mutePort: number;
  const held = new Set<Socket>();
  let scriptDir: string;
  const clients: GeoClient[] = [];

  const token = (sub: string, regions?: string[]) => signTestToken(SECRET, sub, regions ? { regions } : {});
  const eu = () => {
    const region = deployment.region('eu');
    return [{ name: 'eu', url: region.url, wsUrl: region.wsUrl }];
  };
  const connect = async (options: Partial<GeoClientOptions>): Promise<GeoClient> => {
    const client = await GeoClient.connect({ regions: eu(), WebSocket: WebSocket, probe: async () => 1, ...options });
    clients.push(client);
    return client;
  };

  /** Runs SCRIPT in a child node with `config`; kills it (and fails) if it does not exit within `ms`. */
  const runChild = (config: Record<string, unknown>, nodeArgs: string[] = [], ms = 20_000): Promise<ChildRun> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...nodeArgs, path.join(scriptDir, 'sdk-script.mjs')], {
        env: { ...process.env, SDK_E2E: JSON.stringify(config), NODE_NO_WARNINGS: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const killer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the child did not exit by itself within ${ms} ms; stdout: ${stdout}; stderr: ${stderr}`));
      }, ms);
      child.on('exit', (code) => {
        const exitedAt = Date.now();
        clearTimeout(killer);
        const lines = stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        const done = lines.find((line) => line.step === 'done');
        resolve({ code, lines, stderr, lingerMs: done ? exitedAt - (done.at as number) : Infinity });
      });
    });
  const step = (run: ChildRun, name: string) => run.lines.find((line) => line.step === name);

  beforeAll(async () => {
    const geo: Partial<GeoWsModuleOptions> = {
      authenticate: jwtAuthenticator({ issuer: TEST_ISSUER, audience: TEST_AUDIENCE, secret: SECRET }),
      allowedOrigins: ['https://chat.geo-ws.test'],
    };
    deployment = await deployRegions(['eu', 'us'], { geo });
    bare = await deployRegions(['eu'], { geo: { ...geo, endpoints: false } as Partial<GeoWsModuleOptions> });
    mute = http.createServer((_request, response) => response.end('{"status":"ok"}'));
    mute.on('upgrade', (_request, socket: Socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    mutePort = (mute.address() as AddressInfo).port;
    scriptDir = mkdtempSync(path.join(tmpdir(), 'geo-ws-sdk-node-'));
    writeFileSync(path.join(scriptDir, 'sdk-script.mjs'), SCRIPT);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await deployment?.close();
    await bare?.close();
    for (const socket of held) socket.destroy();
    mute?.closeAllConnections();
    await new Promise<void>((resolve) => (mute ? mute.close(() => resolve()) : resolve()));
    if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  });

  describe('B: a refused token, with ws (the HTTP status of the refusal)', () => {
    it('bad or expired token: UNAUTHORIZED at once; a token not valid in the region: FORBIDDEN; a bystander on the region stays connected and keeps receiving', async () => {
      const room = `bystand-${randomUUID().slice(0, 6)}`;
      const bystander = await connect({ token: await token('bystander') });
      const reconnects: unknown[] = [];
      bystander.on('reconnect', (event) => reconnects.push(event));
      const seen: string[] = [];
      await bystander.join(room, (event: GeoEnvelope) => seen.push((event.data as { text: string }).text));
      const writer = await connect({ token: await token('writer') });
      await writer.join(room, () => undefined);
      await writer.publish(room, 'note.add', { text: 'before' });

      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('late')
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .sign(new TextEncoder().encode(SECRET));
      const refusals: { code: string; message: string; ms: number; name: string }[] = [];
      for (const refused of ['not-a-jwt', expired, await token('elsewhere', ['us'])]) {
        const started = Date.now();
        const error = (await connect({ token: refused, connectTimeoutMs: 10_000 }).catch((caught: unknown) => caught)) as Error & {
          code: string;
        };
        refusals.push({ code: error.code, message: error.message, ms: Date.now() - started, name: error.name });
      }
      console.log(`refusals surfaced after ${refusals.map((refusal) => `${refusal.ms} ms`).join(', ')} (connectTimeoutMs 10000)`);
      expect(refusals.map(({ code, message, name }) => ({ code, message, name }))).toEqual([
        {
          code: 'UNAUTHORIZED',
          name: 'GeoClientError',
          message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): a valid token is required',
        },
        {
          code: 'UNAUTHORIZED',
          name: 'GeoClientError',
          message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): a valid token is required',
        },
        {
          code: 'FORBIDDEN',
          name: 'GeoClientError',
          message: 'GeoClient: region "eu" refused the connection: FORBIDDEN (HTTP 403): this token may not be used in region "eu"',
        },
      ]);
      for (const refusal of refusals) expect(refusal.ms).toBeLessThan(2000);

      await writer.publish(room, 'note.add', { text: 'after' });
      await waitFor(() => seen.length === 2, 'the bystander to receive both');
      expect(seen).toEqual(['before', 'after']);
      expect([bystander.state, reconnects]).toEqual(['open', []]);
    });
  });

  describe('A: a Node process using the SDK exits by itself after close()', () => {
    it('after a successful connect, join, publish and close()', async () => {
      const run = await runChild({
        ws: true,
        room: `child-${randomUUID().slice(0, 6)}`,
        options: { regions: eu(), token: await token('child'), probe: undefined },
      });
      expect([run.code, run.stderr]).toEqual([0, '']);
      expect(step(run, 'roundtrip')).toMatchObject({ seen: ['from a child process'] });
      expect(run.lingerMs).toBeLessThan(1000);
    });

    it('after a refused connect (bad token, default probes and heartbeat)', async () => {
      const run = await runChild({ ws: true, options: { regions: eu(), token: 'bad' } });
      expect(run.code).toBe(0);
      expect(step(run, 'rejected')).toMatchObject({ code: 'UNAUTHORIZED', name: 'GeoClientError' });
      expect(run.lingerMs).toBeLessThan(1000);
    });

    it('after close() during connect (a host that never answers the upgrade): connect() rejects CLOSED at once', async () => {
      const mutes = [{ name: 'mute', url: `http://127.0.0.1:${mutePort}`, wsUrl: `ws://127.0.0.1:${mutePort}/ws` }];
      const run = await runChild({ ws: true, closeAfterMs: 300, options: { regions: mutes, probe: undefined } });
      expect(run.code).toBe(0);
      expect(step(run, 'rejected')).toMatchObject({ code: 'CLOSED', name: 'GeoClientError' });
      expect(run.lingerMs).toBeLessThan(1000);
    });

    it('after the connect deadline (TIMEOUT) against that host', async () => {
      const mutes = [{ name: 'mute', url: `http://127.0.0.1:${mutePort}`, wsUrl: `ws://127.0.0.1:${mutePort}/ws` }];
      const run = await runChild({ ws: true, options: { regions: mutes, connectTimeoutMs: 2500 } });
      expect(run.code).toBe(0);
      expect(step(run, 'rejected')).toMatchObject({
        code: 'TIMEOUT',
        message: 'GeoClient: no region accepted a connection within 2500 ms',
      });
      expect(run.lingerMs).toBeLessThan(1000);
    });
  });

  describe("D and E: Node's own WebSocket (undici), without the WebSocket option", () => {
    it('joins, publishes, receives its event, gets the ack, closes and exits by itself', async () => {
      const run = await runChild(
        { ws: false, room: `undici-${randomUUID().slice(0, 6)}`, options: { regions: eu(), token: await token('undici') } },
        WITH_GLOBAL_WEBSOCKET,
      );
      expect([run.code, run.stderr]).toEqual([0, '']);
      expect(step(run, 'open')).toEqual({ step: 'open', region: 'eu' });
      expect(step(run, 'roundtrip')).toMatchObject({ seq: 1, seen: ['from a child process'] });
      expect(run.lingerMs).toBeLessThan(1000);
    });

    it('a bad token: UNAUTHORIZED at once (the handshake check), a token not valid in the region: FORBIDDEN', async () => {
      const bad = await runChild({ ws: false, options: { regions: eu(), token: 'bad', connectTimeoutMs: 10_000 } }, WITH_GLOBAL_WEBSOCKET);
      expect(step(bad, 'rejected')).toMatchObject({
        code: 'UNAUTHORIZED',
        message: 'GeoClient: region "eu" refused the connection: UNAUTHORIZED (HTTP 401): a valid token is required',
      });
      expect(step(bad, 'rejected')!.afterMs).toBeLessThan(2000);
      const elsewhere = await runChild(
        { ws: false, options: { regions: eu(), token: await token('elsewhere', ['us']), connectTimeoutMs: 10_000 } },
        WITH_GLOBAL_WEBSOCKET,
      );
      expect(step(elsewhere, 'rejected')).toMatchObject({ code: 'FORBIDDEN' });
      expect(step(elsewhere, 'rejected')!.afterMs).toBeLessThan(2000);
      expect([bad.code, elsewhere.code, bad.lingerMs < 1000, elsewhere.lingerMs < 1000]).toEqual([0, 0, true, true]);
    });

    it('a region without the check (endpoints: false): the old behaviour, retried until the deadline', async () => {
      const solo = bare.region('eu');
      const run = await runChild(
        { ws: false, options: { regions: [{ name: 'eu', url: solo.url }], token: 'bad', connectTimeoutMs: 1500 } },
        WITH_GLOBAL_WEBSOCKET,
      );
      expect(step(run, 'rejected')).toMatchObject({ code: 'TIMEOUT' });
      expect(run.code).toBe(0);
    });

    it('no global WebSocket and no WebSocket option: INVALID_OPTIONS at once, one line saying what to pass', async () => {
      const run = await runChild({ ws: false, options: { regions: eu(), token: 'x' } }, WITHOUT_GLOBAL_WEBSOCKET);
      expect(run.code).toBe(0);
      expect(step(run, 'rejected')).toMatchObject({
        code: 'INVALID_OPTIONS',
        message: `GeoClient: this runtime has no global WebSocket (Node ${process.versions.node} < 22): pass { WebSocket } from the "ws" package: import { WebSocket } from 'ws'`,
      });
    });
  });

  describe('E: GET /geo/handshake answers what the upgrade would', () => {
    const check = (headers: Record<string, string>, query = '') =>
      fetch(`${deployment.region('eu').url}/geo/handshake${query}`, { headers, cache: 'no-store' });

    it('204 for a valid token; 401, 403 (region, origin) with the refusal body; CORS for allowed origins only; the preflight', async () => {
      const origin = 'https://chat.geo-ws.test';
      const ok = await check({ authorization: `Bearer ${await token('checker')}`, origin });
      expect([ok.status, ok.headers.get('access-control-allow-origin'), ok.headers.get('vary')]).toEqual([204, origin, 'Origin']);

      const bad = await check({ authorization: 'Bearer bad', origin });
      expect([bad.status, await bad.json(), bad.headers.get('access-control-allow-origin')]).toEqual([
        401,
        { code: 'UNAUTHORIZED', message: 'a valid token is required' },
        origin,
      ]);
      const none = await check({});
      expect(none.status).toBe(401);

      const elsewhere = await check({ authorization: `Bearer ${await token('elsewhere', ['us'])}` });
      expect([elsewhere.status, await elsewhere.json()]).toEqual([
        403,
        { code: 'FORBIDDEN', message: 'this token may not be used in region "eu"' },
      ]);

      const foreign = await check({ authorization: `Bearer ${await token('checker')}`, origin: 'https://evil.example' });
      expect([foreign.status, await foreign.json(), foreign.headers.get('access-control-allow-origin')]).toEqual([
        403,
        { code: 'FORBIDDEN', message: 'this origin may not open a WebSocket here' },
        null,
      ]);

      const preflight = await fetch(`${deployment.region('eu').url}/geo/handshake`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      expect([
        preflight.status,
        preflight.headers.get('access-control-allow-origin'),
        preflight.headers.get('access-control-allow-headers'),
        preflight.headers.get('vary'),
      ]).toEqual([204, origin, 'authorization', 'Origin']);
    });

    it('is absent with endpoints: false (404)', async () => {
      const response = await fetch(`${bare.region('eu').url}/geo/handshake`, { headers: { authorization: 'Bearer bad' } });
      expect(response.status).toBe(404);
    });
  });
});
