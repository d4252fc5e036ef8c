/**
 * Many rooms on NATS: what live tails cost with one consumer per room versus one consumer
 * per stream (sorted to the rooms in the node), for issue #12 point 6.
 *
 *   npm run build && node apps/lab/dist/bench/nats-consumers.js \
 *     [--rooms 100,1000,10000] [--modes per-room,shared] [--rate 500] [--seconds 15]
 *     [--traffic-rooms 0] [--topology single|supercluster]
 *
 * Per case: a fresh nats-server (Debian's 2.9.10, its own port and store), one geo-ws NATS
 * transport (the node) that opens a tail on each of `rooms` rooms (100 at a time), then
 * 5 s idle, then a publisher process appends `rate` events per second (round robin) to
 * the tailed rooms, or to `--traffic-rooms` rooms of which the node tails the first
 * `rooms` (the node then reads other rooms' events it drops: the shared consumer's cost).
 * Printed: time to open the tails, consumers on the server, CPU of nats-server and of the
 * node (% of one core) idle and under load, nats-server RSS, delivery latency (append
 * called → tail callback) and deliveries against what was appended to tailed rooms.
 * `supercluster`: the node connects to another region's cluster than the stream's, so
 * every delivery crosses a gateway (CPU and RSS then are the stream's server's).
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Logger } from '@nestjs/common';
import { globalLog, natsTransport, type GeoTransport, type GeoTransportFactory, type GeoSubscription } from '@geo-ws/nest';
import { readProcess } from '../run/process-stats.js';
import { startSingleNode, startSupercluster, type NatsTopology } from '../topology/nats-cluster.js';

/** Tails opened at once (a region opening rooms as clients join, not all in one burst). */
const OPEN_CONCURRENCY = 100;
const IDLE_MS = 5000;
/** After publishing stops: time for the last deliveries. */
const DRAIN_MS = 2000;

interface Case {
  rooms: number;
  trafficRooms: number;
  mode: 'per-room' | 'shared';
}

interface Row extends Case {
  openSeconds: number;
  consumers: number;
  idleServerCpu: number;
  idleNodeCpu: number;
  loadServerCpu: number;
  loadNodeCpu: number;
  serverRssMiB: number;
  p50: number;
  p99: number;
  max: number;
  delivered: number;
  expected: number;
}

/** What the publisher process is told (argv JSON) and answers (IPC): appends per room it made. */
interface PublisherPlan {
  servers: string;
  namespace: string;
  homeCluster?: string;
  rooms: number;
  rate: number;
  seconds: number;
}

const context = (region: string) => ({
  region,
  regions: ['asia', 'eu', 'us'],
  dedupWindowMs: 120_000,
  retention: { maxEvents: 1000, maxAgeMs: 3_600_000 },
});

const roomName = (i: number) => `bench-${i}`;

async function connectNode(factory: GeoTransportFactory, region: string): Promise<GeoTransport> {
  const transport = await factory(context(region));
  await transport.connect();
  return transport;
}

/** The publisher process: appends round robin at the rate, each event carrying when it was appended. */
async function publish(plan: PublisherPlan): Promise<void> {
  Logger.overrideLogger(['error']);
  const transport = await connectNode(
    natsTransport({ servers: plan.servers, namespace: plan.namespace, homeCluster: plan.homeCluster }),
    plan.homeCluster ?? 'eu',
  );
  const appended = new Array<number>(plan.rooms).fill(0);
  const total = plan.rate * plan.seconds;
  const started = Date.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / plan.rate;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const room = n % plan.rooms;
    const append = transport
      .append(globalLog(roomName(room)), {
        event_id: randomUUID(),
        room_id: roomName(room),
        type: 'bench.event',
        sender: 'bench',
        timestamp: new Date().toISOString(),
        region: 'eu',
        data: { sentAt: Date.now() },
      })
      .then(() => appended[room]++)
      .catch(() => undefined);
    inFlight.add(append);
    void append.finally(() => inFlight.delete(append));
  }
  await Promise.all(inFlight);
  await transport.close();
  process.send?.(appended);
}

async function runCase(bench: Case, options: { rate: number; seconds: number; topology: string }): Promise<Row> {
  const supercluster = options.topology === 'supercluster';
  const topology: NatsTopology = supercluster ? await startSupercluster(['eu', 'us']) : await startSingleNode('eu');
  try {
    const home = topology.node('eu');
    const namespace = `bench${randomUUID().slice(0, 6)}`;
    const homeCluster = supercluster ? 'eu' : undefined;
    // The node: in the stream's region, or across the gateway from it.
    const nodeRegion = supercluster ? 'us' : 'eu';
    const sharedTailFrom = bench.mode === 'shared' ? 1 : Number.POSITIVE_INFINITY;
    // Streams exist before the node opens anything (an app of the namespace booted first).
    const setUp = await connectNode(natsTransport({ servers: home.clientUrl, namespace, homeCluster }), 'eu');
    const node = await connectNode(
      natsTransport({ servers: topology.node(nodeRegion).clientUrl, namespace, homeCluster, sharedTailFrom }),
      nodeRegion,
    );
    const latencies: number[] = [];
    const tails: GeoSubscription[] = [];
    const openedAt = Date.now();
    for (let next = 0; next < bench.rooms;) {
      const batch = Array.from({ length: Math.min(OPEN_CONCURRENCY, bench.rooms - next) }, () => next++);
      tails.push(
        ...(await Promise.all(
          batch.map((i) =>
            node.tail(globalLog(roomName(i)), 0, (event) => latencies.push(Date.now() - (event.data as { sentAt: number }).sentAt)),
          ),
        )),
      );
    }
    const openSeconds = (Date.now() - openedAt) / 1000;
    const serverPid = home.pid!;
    const window = async (during: Promise<unknown>) => {
      const server = readProcess(serverPid)!.cpuSeconds;
      const client = process.cpuUsage();
      const started = Date.now();
      await during;
      const seconds = (Date.now() - started) / 1000;
      const used = process.cpuUsage(client);
      return {
        server: (100 * (readProcess(serverPid)!.cpuSeconds - server)) / seconds,
        node: (100 * (used.user + used.system)) / 1e6 / seconds,
      };
    };
    const idle = await window(new Promise((resolve) => setTimeout(resolve, IDLE_MS)));
    const plan: PublisherPlan = {
      servers: home.clientUrl,
      namespace,
      homeCluster,
      rooms: bench.trafficRooms,
      rate: options.rate,
      seconds: options.seconds,
    };
    const publisher = fork(process.argv[1], ['--publisher', JSON.stringify(plan)], { stdio: 'inherit' });
    const appended = new Promise<number[]>((resolve, reject) => {
      publisher.once('message', (message) => resolve(message as number[]));
      publisher.once('exit', (code) => reject(new Error(`the publisher exited (${code})`)));
    });
    const load = await window(appended.then(() => new Promise((resolve) => setTimeout(resolve, DRAIN_MS))));
    const expected = (await appended).slice(0, bench.rooms).reduce((sum, count) => sum + count, 0);
    const consumers = await consumerCount(home.clientUrl, namespace);
    const serverRssMiB = readProcess(serverPid)!.rssBytes / 2 ** 20;
    await Promise.all(tails.map((tail) => tail.close()));
    await node.close();
    await setUp.close();
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? NaN;
    return {
      ...bench,
      openSeconds,
      consumers,
      idleServerCpu: idle.server,
      idleNodeCpu: idle.node,
      loadServerCpu: load.server,
      loadNodeCpu: load.node,
      serverRssMiB,
      p50: at(0.5),
      p99: at(0.99),
      max: latencies.at(-1) ?? NaN,
      delivered: latencies.length,
      expected,
    };
  } finally {
    await topology.stop();
  }
}

/** Consumers the global stream has (the node's tails; nothing else opens one). */
async function consumerCount(servers: string, namespace: string): Promise<number> {
  const nc = await connect({ servers });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(`GEOWS_${namespace.toUpperCase()}`);
    return info.state.consumer_count;
  } finally {
    await nc.close();
  }
}

function print(rows: Row[], options: { rate: number; seconds: number; topology: string }): void {
  const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  console.log(
    `\n${options.rate} events/s for ${options.seconds} s, nats-server 2.9.10, ${options.topology}; CPU in % of one core, latency append → tail callback`,
  );
  console.log(
    '| rooms tailed | rooms with traffic | mode | consumers | open (s) | idle CPU server / node | load CPU server / node | nats-server RSS (MiB) | p50 / p99 / max (ms) | delivered / appended |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.rooms} | ${row.trafficRooms} | ${row.mode} | ${row.consumers} | ${fixed(row.openSeconds, 1)} | ` +
        `${fixed(row.idleServerCpu, 1)} / ${fixed(row.idleNodeCpu, 1)} | ${fixed(row.loadServerCpu, 1)} / ${fixed(row.loadNodeCpu, 1)} | ` +
        `${fixed(row.serverRssMiB)} | ${fixed(row.p50)} / ${fixed(row.p99)} / ${fixed(row.max)} | ${row.delivered} / ${row.expected} |`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      publisher: { type: 'string' },
      rooms: { type: 'string', default: '100,1000,10000' },
      modes: { type: 'string', default: 'per-room,shared' },
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '15' },
      'traffic-rooms': { type: 'string', default: '0' },
      topology: { type: 'string', default: 'single' },
    },
  });
  if (values.publisher) return publish(JSON.parse(values.publisher) as PublisherPlan);
  Logger.overrideLogger(['error']);
  const options = { rate: Number(values.rate), seconds: Number(values.seconds), topology: values.topology };
  if (options.topology !== 'single' && options.topology !== 'supercluster') throw new Error('--topology is single or supercluster');
  const trafficRooms = Number(values['traffic-rooms']);
  const rows: Row[] = [];
  for (const rooms of values.rooms.split(',').map(Number)) {
    for (const mode of values.modes.split(',') as Case['mode'][]) {
      const bench = { rooms, trafficRooms: Math.max(rooms, trafficRooms), mode };
      process.stderr.write(`${JSON.stringify(bench)}…\n`);
      rows.push(await runCase(bench, options));
      print(rows.slice(-1), options);
    }
  }
  print(rows, options);
}

await main();
