/**
 * Redis under raw-protocol load (issue 20): three region processes of the sample app on one
 * fresh Redis, clients speaking wire protocol v1 by hand (no SDK, so nothing hides a tail
 * that stops: the SDK would rejoin and replay).
 *
 * - `busy`: `--clients` in rooms of `--room-size` spanning the regions, `--publishers` per
 *   room at `--rate` msg/s for `--duration` s. Prints the live tails that stopped (the
 *   regions' `geows_tail_stops_total`), the refusals clients got, and the deliveries
 *   missed (every acked event should reach every member of its room once).
 * - `idle`: `--connections` × `--rooms-per-connection` distinct rooms joined and held idle.
 *   Prints the commands Redis processed per second while they idle, and a bystander's
 *   publish-to-ack latency in its own room (p50/p99) before the rooms were joined and while
 *   they idle.
 *
 * `npm run build && node apps/lab/dist/bench/redis-raw-load.js busy --clients 1500`
 * `node apps/lab/dist/bench/redis-raw-load.js idle --connections 200 --rooms-per-connection 100`
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError } from 'commander';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { freePort } from '../topology/free-port.js';
import { RedisServer } from '../topology/redis-servers.js';
import { RegionProcess } from '../topology/server-process.js';

const REGIONS = ['asia', 'eu', 'us'];
const SECRET = 'redis-raw-load-bench-secret-long-enough';
const ISSUER = 'geo-ws-bench';
const AUDIENCE = 'geo-ws-bench';

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};

async function token(sub: string): Promise<string> {
  return new SignJWT({ regions: REGIONS, rooms: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(SECRET));
}

/** The fields of the frames the bench reads (every frame is `{ event, data }`). */
interface FrameData {
  room?: string;
  scope?: string;
  event_id?: string;
  room_id?: string;
  seq?: number | null;
  code?: string;
}

/** A raw client: counts deliveries per room (unique seqs) and refusals, resolves acks. */
class RawClient {
  readonly seqs = new Map<string, Set<number>>();
  readonly refusals = new Map<string, number>();
  private readonly waiting = new Map<string, (answer: { seq?: number; code?: string }) => void>();
  private readonly joins = new Map<string, () => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (raw: Buffer) => this.onFrame(JSON.parse(raw.toString()) as { event: string; data: FrameData | null }));
    socket.on('error', () => undefined);
  }

  static async open(url: string, sub: string): Promise<RawClient> {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${await token(sub)}` } });
    const client = new RawClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  join(room: string): Promise<void> {
    return new Promise((resolve) => {
      this.joins.set(room, resolve);
      this.send('geo.join', { room });
    });
  }

  publish(room: string, text: string): Promise<{ seq?: number; code?: string }> {
    const eventId = randomUUID();
    return new Promise((resolve) => {
      this.waiting.set(eventId, resolve);
      this.send('chat.message', { event_id: eventId, room_id: room, data: { text } });
    });
  }

  close(): void {
    this.socket.terminate();
  }

  private send(event: string, data: unknown): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ event, data }));
  }

  private onFrame({ event, data }: { event: string; data: FrameData | null }): void {
    if (!data) return;
    if (event === 'geo.joined') {
      if (!data.scope && data.room) this.joins.get(data.room)?.();
      return;
    }
    if (data.event_id && (event === 'geo.ack' || event === 'geo.error')) {
      this.waiting.get(data.event_id)?.({ seq: data.seq ?? undefined, code: data.code });
      this.waiting.delete(data.event_id);
    }
    if (event === 'geo.error' && data.code) this.refusals.set(data.code, (this.refusals.get(data.code) ?? 0) + 1);
    if (event.startsWith('geo.') || typeof data.seq !== 'number' || !data.room_id) return;
    let seen = this.seqs.get(data.room_id);
    if (!seen) this.seqs.set(data.room_id, (seen = new Set()));
    seen.add(data.seq);
  }
}

interface Deployment {
  redis: RedisServer;
  regions: RegionProcess[];
  stop(): Promise<void>;
}

async function deploy(cpuProfileDir?: string): Promise<Deployment> {
  const redis = await RedisServer.start();
  const ports = await Promise.all(REGIONS.map(() => freePort()));
  const directory = REGIONS.map((name, i) => `${name}=http://127.0.0.1:${ports[i]}`).join(',');
  const regions = REGIONS.map(
    (name, i) =>
      new RegionProcess(
        name,
        ports[i],
        {
          GEO_TRANSPORT: 'redis',
          GEO_REDIS_URL: redis.url,
          GEO_REGIONS: directory,
          GEO_METRICS: '1',
          GEO_AUTH: 'jwt',
          GEO_JWT_SECRET: SECRET,
          GEO_JWT_ISSUER: ISSUER,
          GEO_JWT_AUDIENCE: AUDIENCE,
        },
        cpuProfileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] } : {},
      ),
  );
  await Promise.all(regions.map((region) => region.start(60_000)));
  return {
    redis,
    regions,
    stop: async () => {
      await Promise.all(regions.map((region) => region.stop()));
      await redis.stop();
    },
  };
}

/** The sum of a counter family over the regions' `/metrics`. */
async function metricSum(regions: RegionProcess[], family: string): Promise<number> {
  let sum = 0;
  for (const region of regions) {
    const text = await (await fetch(`${region.url}/metrics`)).text();
    for (const line of text.split('\n')) if (line.startsWith(family)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

async function commandsProcessed(redis: RedisServer): Promise<number> {
  const client = new Redis(redis.url);
  try {
    return Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))?.[1]);
  } finally {
    client.disconnect();
  }
}

/** Calls per command so far (`INFO commandstats`). */
async function commandCalls(redis: RedisServer): Promise<Map<string, number>> {
  const client = new Redis(redis.url);
  try {
    const calls = new Map<string, number>();
    for (const [, name, count] of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      calls.set(name, Number(count));
    return calls;
  } finally {
    client.disconnect();
  }
}

/** The commands called most between two `commandCalls`, per second. */
function topCommands(before: Map<string, number>, after: Map<string, number>, seconds: number): string {
  return [...after]
    .map(([name, calls]) => [name, (calls - (before.get(name) ?? 0)) / seconds] as const)
    .filter(([, rate]) => rate > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([name, rate]) => `${name} ${rate.toFixed(1)}/s`)
    .join(', ');
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

/** Opens `count` clients `at` a time. */
async function openAll<T>(count: number, at: number, open: (i: number) => Promise<T>, label: string): Promise<T[]> {
  const clients: T[] = [];
  for (let start = 0; start < count; start += at) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(at, count - start) }, (_, k) => open(start + k)))));
    process.stderr.write(`\r${label}: ${clients.length}/${count}`);
  }
  process.stderr.write('\n');
  return clients;
}

async function busy(options: { clients: number; roomSize: number; publishers: number; rate: number; duration: number }): Promise<void> {
  const deployment = await deploy();
  try {
    const { regions } = deployment;
    const clients = await openAll(
      options.clients,
      200,
      (i) => RawClient.open(regions[i % regions.length].wsUrl, `member-${i}`),
      'connecting',
    );
    const roomOf = (i: number) => `room-${Math.floor(i / options.roomSize)}`;
    await Promise.all(clients.map((client, i) => client.join(roomOf(i))));
    const stopsBefore = await metricSum(regions, 'geows_tail_stops_total');
    const acked = new Map<string, number>();
    const until = Date.now() + options.duration * 1000;
    const publishers = clients.filter((_, i) => i % options.roomSize < options.publishers);
    let sent = 0;
    await Promise.all(
      publishers.map(async (client, p) => {
        const room = roomOf(clients.indexOf(client));
        await sleep((p * 37) % 500); // spread the publishers' first sends
        while (Date.now() < until) {
          const answer = await client.publish(room, `m${sent++}`);
          if (typeof answer.seq === 'number') acked.set(room, (acked.get(room) ?? 0) + 1);
          await sleep(1000 / options.rate);
        }
      }),
    );
    await sleep(5000); // the last deliveries
    let expected = 0;
    let received = 0;
    clients.forEach((client, i) => {
      const room = roomOf(i);
      expected += acked.get(room) ?? 0;
      received += Math.min(client.seqs.get(room)?.size ?? 0, acked.get(room) ?? 0);
    });
    const refusals = new Map<string, number>();
    for (const client of clients) for (const [code, n] of client.refusals) refusals.set(code, (refusals.get(code) ?? 0) + n);
    const stops = (await metricSum(regions, 'geows_tail_stops_total')) - stopsBefore;
    console.log('| clients | rooms | acked publishes | deliveries expected | missed | tails stopped | refusals |');
    console.log('|---:|---:|---:|---:|---:|---:|---|');
    console.log(
      `| ${options.clients} | ${Math.ceil(options.clients / options.roomSize)} | ${[...acked.values()].reduce((a, b) => a + b, 0)} | ${expected} | ${expected - received} (${(((expected - received) / Math.max(1, expected)) * 100).toFixed(2)} %) | ${stops} | ${JSON.stringify(Object.fromEntries(refusals))} |`,
    );
    for (const client of clients) client.close();
  } finally {
    await deployment.stop();
  }
}

async function idle(options: { connections: number; roomsPerConnection: number; hold: number; cpuProf?: string }): Promise<void> {
  const deployment = await deploy(options.cpuProf);
  try {
    const { regions, redis } = deployment;
    const bystander = await RawClient.open(regions[1].wsUrl, 'bystander');
    await bystander.join('bystander-room');
    /** Publish-to-ack latency of the bystander, 10 publishes a second for `seconds`. */
    const ackLatency = async (seconds: number): Promise<number[]> => {
      const latencies: number[] = [];
      const until = Date.now() + seconds * 1000;
      while (Date.now() < until) {
        const started = performance.now();
        await bystander.publish('bystander-room', 'ping');
        latencies.push(performance.now() - started);
        await sleep(100);
      }
      return latencies;
    };
    /** Commands Redis processes per second while nothing is published, and the busiest of them. */
    const idleRate = async (): Promise<{ rate: number; busiest: string }> => {
      const [total, calls] = [await commandsProcessed(redis), await commandCalls(redis)];
      await sleep(options.hold * 1000);
      const rate = ((await commandsProcessed(redis)) - total) / options.hold;
      return { rate, busiest: topCommands(calls, await commandCalls(redis), options.hold) };
    };
    const quiet = { ...(await idleRate()), latencies: await ackLatency(options.hold) };

    const holders = await openAll(
      options.connections,
      50,
      async (i) => {
        const client = await RawClient.open(regions[i % regions.length].wsUrl, `holder-${i}`);
        await Promise.all(Array.from({ length: options.roomsPerConnection }, (_, n) => client.join(`idle-${i}-${n}`)));
        return client;
      },
      'joining',
    );
    await sleep(3000);
    const loaded = { ...(await idleRate()), latencies: await ackLatency(options.hold) };
    const rooms = options.connections * options.roomsPerConnection;
    console.log('| rooms held idle | Redis commands/s (nothing published) | bystander ack p50 | bystander ack p99 |');
    console.log('|---:|---:|---:|---:|');
    for (const [count, { rate, latencies }] of [
      [0, quiet],
      [rooms, loaded],
    ] as const) {
      console.log(
        `| ${count} | ${rate.toFixed(1)} | ${percentile(latencies, 50).toFixed(1)} ms | ${percentile(latencies, 99).toFixed(1)} ms |`,
      );
    }
    console.log(`\nBusiest commands with ${rooms} rooms idle: ${loaded.busiest || 'none'}`);
    for (const client of [...holders, bystander]) client.close();
  } finally {
    await deployment.stop();
  }
}

const program = new Command('redis-raw-load').description(
  'Redis under raw-protocol load: tail stops under traffic, the cost of idle rooms',
);
program
  .command('busy')
  .option('--clients <n>', 'clients, spread over the regions', positive, 3000)
  .option('--room-size <n>', 'members per room (rooms span every region)', positive, 100)
  .option('--publishers <n>', 'publishing members per room', positive, 3)
  .option('--rate <n>', 'messages per second per publisher', positive, 2)
  .option('--duration <s>', 'seconds of publishing', positive, 20)
  .action((options: Parameters<typeof busy>[0]) => busy(options));
program
  .command('idle')
  .option('--connections <n>', 'connections, each with its own identity', positive, 200)
  .option('--rooms-per-connection <n>', 'distinct rooms each joins (limit: maxRoomsPerConnection, 100)', positive, 100)
  .option('--hold <s>', 'seconds each measurement lasts', positive, 10)
  .option('--cpu-prof <dir>', 'write a V8 CPU profile of each region process here')
  .action((options: Parameters<typeof idle>[0]) => idle(options));
await program.parseAsync();
process.exit(0);
