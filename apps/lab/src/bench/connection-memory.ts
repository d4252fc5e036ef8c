/**
 * Server memory per connection (#12) and per membership (#20): one region process of the
 * sample app, raw `ws` clients (in a child process, so the RSS read is the server's alone)
 * opened in steps, each joining `--rooms-per-connection` rooms of `--room-size` members;
 * after each step the server's RSS (from /proc) and V8 heap (after a forced GC) are sampled,
 * and the cost per connection is the least-squares slope over the steps (per membership:
 * that slope divided by the rooms per connection, so it includes the connection's own share).
 * A second pass (a fresh server, so the snapshots do not inflate the first pass's RSS) takes
 * heap snapshots at two counts and prints what one connection (or membership) adds, class by
 * class.
 *
 * `npm run build && node apps/lab/dist/bench/connection-memory.js [--steps 0,1000,2000,4000,6000] [--snapshots 1000,4000]`
 * Many rooms per connection (#20):
 * `node apps/lab/dist/bench/connection-memory.js --rooms-per-connection 100 --room-size 200 --steps 0,50,100,150,200 --snapshots 50,200`
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { freePort } from '../topology/free-port.js';
import { reapOnExit, removeOnExit } from '../topology/reaper.js';
import { RegionProcess } from '../topology/server-process.js';
import { diff, formatDiff, formatRetainers, summarise } from './heap-snapshot.js';
import type { MemorySample } from './memory-probe.js';

/** This kernel gives each process 20k descriptors; the clients' process needs one per connection. */
const MAX_CONNECTIONS = 8000;
/** The sample app's demo authority (apps/chat/src/config.ts), as the lab signs for it. */
const DEMO_ISSUER = 'geo-ws-demo';
const DEMO_AUDIENCE = 'geo-ws-chat';
/** Like the lab's deployments: three regions, this one serving, the token valid in all. */
const REGIONS = ['asia', 'eu', 'us'];
const REGION = 'eu';
/** What one connection is compared by in the snapshot diff, besides the top classes. */
const RETAINERS_OF = ['IncomingMessage', 'ClientConnection', 'WebSocket', 'Socket', 'Session', 'TokenBucket'];
/** The server's default `limits.maxRoomsPerConnection`. */
const MAX_ROOMS_PER_CONNECTION = 100;

interface BenchOptions {
  steps: number[];
  roomSize: number;
  roomsPerConnection: number;
  settleMs: number;
  snapshots: number[];
  transport: 'memory' | 'redis' | 'nats';
  concurrency: number;
  out: string;
  keepSnapshots: boolean;
}

/** parent → clients process */
type ClientsCommand =
  | { type: 'open'; total: number; url: string; secret: string; roomSize: number; roomsPerConnection: number; concurrency: number }
  | { type: 'exit' };
/** clients process → parent */
type ClientsReply = { type: 'opened'; open: number; failed: number; firstError?: string };

interface Row {
  connections: number;
  rssMiB: number;
  heapTotalMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
}

// ---------------------------------------------------------------- the clients' process

/** Opens raw connections up to `total` (never closes any), each joining its rooms. */
function runClients(): void {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const key = new Map<string, Uint8Array>();

  const open = async (index: number, command: Extract<ClientsCommand, { type: 'open' }>): Promise<void> => {
    let secret = key.get(command.secret);
    if (!secret) key.set(command.secret, (secret = new TextEncoder().encode(command.secret)));
    const now = Math.floor(Date.now() / 1000);
    // Like the lab's clients: one identity and one token each, valid in every region.
    const token = await new SignJWT({ regions: REGIONS, rooms: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(`bench-${index}`)
      .setIssuer(DEMO_ISSUER)
      .setAudience(DEMO_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 590)
      .sign(secret);
    // Connections index..index+roomSize-1 share their rooms: each room has roomSize members.
    const group = Math.floor(index / command.roomSize);
    const rooms =
      command.roomsPerConnection === 1
        ? [`bench-room-${group}`]
        : Array.from({ length: command.roomsPerConnection }, (_, i) => `bench-room-${group}-${i}`);
    const socket = new WebSocket(command.url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      let joined = 0;
      // Generous: thousands of new rooms at once on a broker shared with other work take a while.
      const timeoutS = 20 + 2 * rooms.length;
      const timer = setTimeout(() => reject(new Error(`${joined} of ${rooms.length} geo.joined within ${timeoutS} s`)), timeoutS * 1000);
      const done = (error?: Error): void => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        if (error) reject(error);
        else resolve();
      };
      const onMessage = (data: WebSocket.RawData): void => {
        const text = (data as Buffer).toString();
        if (text.startsWith('{"event":"geo.joined"') && ++joined === rooms.length) done();
        else if (text.startsWith('{"event":"geo.error"')) done(new Error(text));
      };
      socket.on('message', onMessage);
      socket.once('open', () => {
        for (const room of rooms) socket.send(JSON.stringify({ event: 'geo.join', data: { room } }));
      });
      socket.once('error', (error) => done(error));
      socket.once('close', (code) => done(new Error(`closed with ${code}`)));
    });
    socket.on('error', () => undefined);
  };

  process.on('message', (command: ClientsCommand) => {
    if (command.type === 'exit') {
      for (const socket of sockets) socket.terminate();
      process.exit(0);
    }
    void (async () => {
      let next = sockets.length;
      const worker = async (): Promise<void> => {
        while (next < command.total) {
          const index = next++;
          await open(index, command).catch((error: unknown) => {
            failed++;
            firstError ??= (error as Error).message;
          });
        }
      };
      await Promise.all(Array.from({ length: command.concurrency }, worker));
      const reply: ClientsReply = { type: 'opened', open: sockets.length - failed, failed, firstError };
      process.send!(reply);
    })();
  });
}

/** The clients' process, seen from the parent. */
class Clients {
  private readonly child: ChildProcess;

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), ['clients'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    reapOnExit(this.child);
  }

  openUpTo(total: number, url: string, secret: string, options: BenchOptions): Promise<ClientsReply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`the clients' process exited (${String(code)})`));
      this.child.once('exit', onExit);
      this.child.once('message', (reply: ClientsReply) => {
        this.child.off('exit', onExit);
        resolve(reply);
      });
      const { roomSize, roomsPerConnection, concurrency } = options;
      const command: ClientsCommand = { type: 'open', total, url, secret, roomSize, roomsPerConnection, concurrency };
      this.child.send(command);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ type: 'exit' } satisfies ClientsCommand);
    await exited;
  }
}

// ---------------------------------------------------------------- the server

/** One region of the sample app, started with the memory probe and the heap-snapshot signal. */
class ServerUnderTest {
  private readonly process: RegionProcess;
  private readonly memoryFile: string;
  private samples = 0;

  private constructor(
    port: number,
    readonly secret: string,
    private readonly dir: string,
    transport: BenchOptions['transport'],
  ) {
    this.memoryFile = join(dir, 'memory.json');
    const namespace = `bench${randomBytes(4).toString('hex')}`;
    this.process = new RegionProcess(
      REGION,
      port,
      {
        GEO_REGIONS: REGIONS.map((region) => `${region}=http://127.0.0.1:${region === REGION ? port : port + 1}`).join(','),
        GEO_DEMO_SECRET: secret,
        GEO_NAMESPACE: namespace,
        GEO_TRANSPORT: transport,
        GEO_BENCH_MEMORY_FILE: this.memoryFile,
      },
      {
        nodeArgs: [
          '--expose-gc',
          '--import',
          new URL('./memory-probe.js', import.meta.url).href,
          // Not SIGUSR2 (Nest's enableShutdownHooks() drains on it): SIGURG, ignored by default.
          '--heapsnapshot-signal=SIGURG',
          `--diagnostic-dir=${dir}`,
        ],
      },
    );
  }

  static async start(dir: string, transport: BenchOptions['transport']): Promise<ServerUnderTest> {
    mkdirSync(dir, { recursive: true });
    const server = new ServerUnderTest(await freePort(), randomBytes(32).toString('hex'), dir, transport);
    await server.process.start();
    return server;
  }

  get wsUrl(): string {
    return this.process.wsUrl;
  }

  private get pid(): number {
    const pid = this.process.pid;
    if (pid === undefined) throw new Error(`the server exited:\n${this.process.log}`);
    return pid;
  }

  /** Connections the server holds (its /readyz says). */
  async connections(): Promise<number> {
    const response = await fetch(`${this.process.url}/readyz`);
    return ((await response.json()) as { connections: number }).connections;
  }

  /** Forces GC in the server, then reads its RSS from /proc and its heap from the probe. */
  async sample(): Promise<{ rss: number; usage: MemorySample }> {
    const sample = ++this.samples;
    process.kill(this.pid, 'SIGWINCH');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const usage = readSample(this.memoryFile);
      if (usage?.sample === sample) return { rss: rssOf(this.pid), usage };
      if (Date.now() > deadline) throw new Error('the server wrote no memory sample within 30 s');
      await sleep(50);
    }
  }

  /** Writes a heap snapshot (in the server's diagnostic dir) and returns its path once complete. */
  async snapshot(): Promise<string> {
    const before = new Set(snapshotsIn(this.dir));
    process.kill(this.pid, 'SIGURG');
    const deadline = Date.now() + 180_000;
    for (;;) {
      await sleep(500);
      const created = snapshotsIn(this.dir).find((file) => !before.has(file));
      // The snapshot is written on the server's main thread: once it answers again, the file is complete.
      if (created && (await this.connections().catch(() => undefined)) !== undefined) return join(this.dir, created);
      if (Date.now() > deadline) throw new Error('no heap snapshot within 180 s');
    }
  }

  async stop(): Promise<void> {
    await this.process.stop('SIGKILL');
  }
}

function snapshotsIn(dir: string): string[] {
  return readdirSync(dir).filter((file) => file.endsWith('.heapsnapshot'));
}

/** The probe's last sample, if it wrote one. */
function readSample(path: string): MemorySample | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as MemorySample;
  } catch {
    return undefined; // not written yet, or being written
  }
}

/** VmRSS of a process, in bytes. */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

// ---------------------------------------------------------------- the run

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n;
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0);
  const sxy = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

async function connectTo(count: number, server: ServerUnderTest, clients: Clients, options: BenchOptions): Promise<void> {
  const started = Date.now();
  const reply = await clients.openUpTo(count, server.wsUrl, server.secret, options);
  if (reply.failed > 0) throw new Error(`${reply.failed} connection(s) failed, e.g.: ${reply.firstError ?? '?'}`);
  const held = await server.connections();
  if (held !== count) throw new Error(`the server holds ${held} connections, expected ${count}`);
  log(
    `${count} connections joined ${options.roomsPerConnection} room(s) each (${((Date.now() - started) / 1000).toFixed(1)} s); settling ${options.settleMs} ms`,
  );
  await sleep(options.settleMs);
}

async function measureSteps(options: BenchOptions): Promise<Row[]> {
  const server = await ServerUnderTest.start(join(options.out, 'rss'), options.transport);
  const clients = new Clients();
  const rows: Row[] = [];
  try {
    for (const step of options.steps) {
      await connectTo(step, server, clients, options);
      const { rss, usage } = await server.sample();
      rows.push({
        connections: step,
        rssMiB: rss / 2 ** 20,
        heapTotalMiB: usage.heapTotal / 2 ** 20,
        heapUsedMiB: usage.heapUsed / 2 ** 20,
        externalMiB: usage.external / 2 ** 20,
      });
    }
  } finally {
    await clients.close();
    await server.stop();
  }
  return rows;
}

async function snapshotDiff(options: BenchOptions): Promise<string> {
  const [first, second] = options.snapshots;
  const server = await ServerUnderTest.start(join(options.out, 'snapshots'), options.transport);
  const clients = new Clients();
  const files: string[] = [];
  try {
    for (const count of [first, second]) {
      await connectTo(count, server, clients, options);
      files.push(await server.snapshot());
      log(`heap snapshot at ${count} connections: ${files.at(-1)!} (${(statSync(files.at(-1)!).size / 2 ** 20).toFixed(0)} MiB)`);
    }
  } finally {
    await clients.close();
    await server.stop();
  }
  const before = summarise(files[0]);
  const after = summarise(files[1], RETAINERS_OF);
  const perMembership = options.roomsPerConnection > 1;
  const added = (second - first) * options.roomsPerConnection;
  const text = [
    perMembership
      ? `What one membership adds to the JS heap (snapshots at ${first} and ${second} connections, ${options.roomsPerConnection} rooms each; the connection's own share included):`
      : `What one connection adds to the JS heap (snapshots at ${first} and ${second} connections):`,
    formatDiff(diff(before, after), added, perMembership ? 'membership' : 'connection'),
    '',
    `At ${second} connections:`,
    formatRetainers(after),
  ].join('\n');
  if (!options.keepSnapshots) for (const file of files) rmSync(file);
  return text;
}

function formatRows(rows: Row[], roomsPerConnection: number): string {
  const columns: [title: string, pick: (row: Row) => number][] = [
    ['RSS', (row) => row.rssMiB],
    ['heap total', (row) => row.heapTotalMiB],
    ['heap used', (row) => row.heapUsedMiB],
    ['external', (row) => row.externalMiB],
  ];
  const bytesPerConnection = (pick: (row: Row) => number): number => slope(rows.map((row) => [row.connections, pick(row) * 2 ** 20])) || 0;
  const slopes = (unit: (bytes: number) => string): string =>
    columns.map(([title, pick]) => `${title} ${rows.length < 2 ? '-' : unit(bytesPerConnection(pick))}`).join(', ');
  const titles = ['connections', ...columns.map(([title]) => `${title} MiB`)];
  const lines = [
    titles.join('  '),
    ...rows.map((row) =>
      [String(row.connections), ...columns.map(([, pick]) => pick(row).toFixed(1))]
        .map((cell, i) => cell.padStart(titles[i].length))
        .join('  '),
    ),
    `KiB per connection (least-squares slope): ${slopes((bytes) => (bytes / 1024).toFixed(1))}`,
  ];
  if (roomsPerConnection > 1)
    lines.push(
      `bytes per membership (the slope ÷ ${roomsPerConnection} rooms per connection): ${slopes((bytes) => (bytes / roomsPerConnection).toFixed(0))}`,
    );
  return lines.join('\n');
}

function log(message: string): void {
  console.error(`[connection-memory] ${message}`);
}

function counts(value: string): number[] {
  if (value === 'none') return [];
  const items = value.split(',').map((item) => Number(item.trim()));
  if (items.some((item) => !Number.isInteger(item) || item < 0 || item > MAX_CONNECTIONS))
    throw new InvalidArgumentError(`expected whole numbers 0..${MAX_CONNECTIONS}, comma-separated`);
  if (items.some((item, i) => i > 0 && item <= items[i - 1])) throw new InvalidArgumentError('expected increasing counts');
  return items;
}

function roomsPerConnection(value: string): number {
  const number = positive(value);
  if (number > MAX_ROOMS_PER_CONNECTION)
    throw new InvalidArgumentError(`the server lets a connection join at most ${MAX_ROOMS_PER_CONNECTION} rooms`);
  return number;
}

function positive(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return number;
}

async function main(): Promise<void> {
  const program = new Command('connection-memory')
    .description('Server memory per connection: RSS slope over connection steps, and a heap-snapshot diff by class.')
    .option('--steps <counts>', `connection counts to sample, increasing (at most ${MAX_CONNECTIONS})`, counts, [0, 1000, 2000, 4000, 6000])
    .option('--snapshots <counts>', 'two connection counts to take heap snapshots at (a second server), or "none"', counts, [1000, 4000])
    .option('--room-size <n>', 'connections per room (consecutive connections share their rooms)', positive, 50)
    .option('--rooms-per-connection <n>', `rooms each connection joins (at most ${MAX_ROOMS_PER_CONNECTION})`, roomsPerConnection, 1)
    .option('--settle-ms <ms>', 'wait after each step before sampling', positive, 2000)
    .addOption(new Option('--transport <name>', 'the region app’s transport').choices(['memory', 'redis', 'nats']).default('memory'))
    .option('--concurrency <n>', 'connections opened at once', positive, 100)
    .option(
      '--out <dir>',
      'where the servers write their samples and snapshots',
      join('/tmp', `connection-memory-${Date.now().toString(36)}`),
    )
    .option('--keep-snapshots', 'keep the .heapsnapshot files (they are deleted after the diff otherwise)', false)
    .parse();
  const options = program.opts<BenchOptions>();
  if (options.snapshots.length !== 0 && options.snapshots.length !== 2) program.error('--snapshots takes two counts (or "none")');
  const forget = options.keepSnapshots ? undefined : removeOnExit(options.out);
  log(
    `region ${REGION} of the sample app on the ${options.transport} transport; ${options.roomsPerConnection} room(s) per connection, ` +
      `rooms of ${options.roomSize}; output in ${options.out}`,
  );
  const rows = await measureSteps(options);
  console.log(formatRows(rows, options.roomsPerConnection));
  if (options.snapshots.length === 2) console.log(`\n${await snapshotDiff(options)}`);
  forget?.();
  if (!options.keepSnapshots) rmSync(options.out, { recursive: true, force: true });
}

if (process.argv[2] === 'clients') {
  runClients();
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
