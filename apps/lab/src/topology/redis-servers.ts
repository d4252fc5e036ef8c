import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { pollUntil } from './probes.js';
import { removeOnExit } from './reaper.js';
import { fileTail, SupervisedProcess, tail } from './supervised-process.js';

/** Where a server runs: its listen address and a command prefix (e.g. `ip netns exec <ns>`). */
export interface RedisPlacement {
  host?: string;
  prefix?: string[];
}

/** One redis-server process on a free port (127.0.0.1 unless placed elsewhere). */
export class RedisServer {
  readonly host: string;
  private readonly process: SupervisedProcess;

  private constructor(
    readonly port: number,
    args: string[],
    placement: RedisPlacement,
    /** Its `--dir`: removed by {@link stop}, or when this process exits. */
    private readonly dir: string,
    private readonly forgetDir: () => void,
    /** Restarts load what the server persisted (`SAVE`, or `--appendonly yes`) instead of starting empty. */
    keepData: boolean,
  ) {
    this.host = placement.host ?? '127.0.0.1';
    this.process = new SupervisedProcess({
      name: `redis-server on ${this.host}:${port}`,
      command: 'redis-server',
      prefix: placement.prefix,
      args: [
        '--port',
        String(port),
        '--bind',
        this.host,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        // Callers from outside a namespace come from a non-loopback address, which protected mode refuses.
        ...(this.host === '127.0.0.1' ? [] : ['--protected-mode', 'no']),
        ...args,
      ],
      ready: async () => (await ping(this.host, port)) === 'PONG' || 'no PONG',
      readyTimeoutMs: 15_000,
      // Redis loads a dump.rdb it finds in its directory (a replica's full sync writes one), so
      // a restart must come back empty unless asked to keep its data.
      prepare: keepData ? undefined : () => emptyDirectory(dir),
    });
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.process.pid : undefined;
  }

  get running(): boolean {
    return this.process.running;
  }

  static async start(args: string[] = [], placement: RedisPlacement = {}, options: { keepData?: boolean } = {}): Promise<RedisServer> {
    // Its own directory, so tests never write into the repository.
    const dir = await mkdtemp(join(tmpdir(), 'geo-ws-redis-'));
    const server = new RedisServer(await freePort(), args, placement, dir, removeOnExit(dir), options.keepData ?? false);
    await server.process.start();
    return server;
  }

  /** SIGKILL: no goodbye to clients or replicas. */
  async kill(): Promise<void> {
    await this.process.kill();
  }

  /** Starts it again on the same port (SIGTERM first if it still runs). */
  async restart(): Promise<void> {
    await this.process.restart();
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
    this.forgetDir();
  }
}

/** Removes what is in `dir`, keeping `dir`. */
async function emptyDirectory(dir: string): Promise<void> {
  const entries = await readdir(dir);
  await Promise.all(entries.map((entry) => rm(join(dir, entry), { recursive: true, force: true })));
}

/** A primary and replicas (`--replicaof`), each replica's link up before this resolves. */
export async function startReplicated(replicas: number): Promise<{ primary: RedisServer; replicas: RedisServer[]; stop(): Promise<void> }> {
  const primary = await RedisServer.start();
  const started: RedisServer[] = [];
  for (let i = 0; i < replicas; i++) started.push(await RedisServer.start(['--replicaof', '127.0.0.1', String(primary.port)]));
  await Promise.all(started.map((replica) => waitForLink(replica.port, replica.host)));
  return {
    primary,
    replicas: started,
    stop: async () => {
      await Promise.all([primary, ...started].map((server) => server.stop()));
    },
  };
}

/** Sentinels watching `primary` as `mymaster` (quorum 2), with fast failure detection. */
export async function startSentinels(primary: RedisServer, count = 3): Promise<{ ports: number[]; dir: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'geo-ws-sentinel-'));
  const keepLogs = Boolean(process.env.GEO_KEEP_SENTINEL_LOGS);
  const forgetDir = keepLogs ? () => undefined : removeOnExit(dir);
  const sentinels: SupervisedProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const config = join(dir, `sentinel-${port}.conf`);
    const logPath = join(dir, `sentinel-${port}.log`);
    await writeFile(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `logfile ${logPath}`,
        `sentinel monitor mymaster 127.0.0.1 ${primary.port} 2`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 5000',
        'sentinel parallel-syncs mymaster 1',
      ].join('\n'),
    );
    sentinels.push(
      new SupervisedProcess({
        name: `sentinel on ${port}`,
        command: 'redis-server',
        args: [config, '--sentinel'],
        ready: async () => (await ping('127.0.0.1', port)) === 'PONG' || 'no PONG',
        readyTimeoutMs: 15_000,
        diagnostics: () => fileTail(logPath),
      }),
    );
    ports.push(port);
  }
  await Promise.all(sentinels.map((sentinel) => sentinel.start()));
  return {
    ports,
    dir,
    stop: async () => {
      await Promise.all(sentinels.map((sentinel) => sentinel.kill()));
      if (!keepLogs) {
        await rm(dir, { recursive: true, force: true });
        forgetDir();
      }
    },
  };
}

/** Runs one check on a short-lived connection; undefined when the server does not answer. */
async function probe<T>(host: string, port: number, check: (client: Redis) => Promise<T>): Promise<T | undefined> {
  const client = new Redis({ port, host, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await check(client);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

function ping(host: string, port: number): Promise<string | undefined> {
  return probe(host, port, (client) => client.ping());
}

/** Waits until a replica's replication link is up. */
export async function waitForLink(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<void> {
  await pollUntil(
    async () => (await probe(host, port, async (client) => (await client.info('replication')).includes('master_link_status:up'))) === true,
    `the replica on ${host}:${port} to sync`,
    timeoutMs,
  );
}

/** A Redis Cluster of `masters` nodes (no replicas), created with `redis-cli --cluster create`. */
export async function startCluster(masters = 3): Promise<{ nodes: { host: string; port: number }[]; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'geo-ws-cluster-'));
  const servers: RedisServer[] = [];
  for (let i = 0; i < masters; i++) {
    servers.push(
      await RedisServer.start([
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${i}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--dir',
        dir,
      ]),
    );
  }
  const create = new SupervisedProcess({
    name: 'redis-cli --cluster create',
    command: 'redis-cli',
    args: ['--cluster', 'create', ...servers.map((server) => `127.0.0.1:${server.port}`), '--cluster-yes'],
  });
  await create.start();
  const { code } = await create.exited();
  if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}:\n${tail(create.output, 20)}`);
  // Every node must agree the cluster is ok (slots assigned and known), not just the first.
  for (const server of servers) {
    await pollUntil(
      async () =>
        (await probe(server.host, server.port, async (client) => (await client.cluster('INFO')).includes('cluster_state:ok'))) === true,
      `cluster node ${server.port} to be ok`,
    );
  }
  return {
    nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RegionalRedis {
  /** The primary, in the first region. */
  primary: RedisServer;
  /** One replica per other region, by region. */
  replicas: Map<string, RedisServer>;
  stop(): Promise<void>;
}

/**
 * A primary in `regions[0]` and one replica in every other region. Each replica follows the
 * primary through `link(replicaRegion, primaryRegion, host, port)` when given (a link proxy),
 * so replication crosses the simulated inter-region link.
 */
export async function startRegionalRedis(
  regions: string[],
  options: {
    placement?: (region: string) => RedisPlacement;
    link?: (fromRegion: string, toRegion: string, host: string, port: number) => Promise<{ host: string; port: number }>;
  } = {},
): Promise<RegionalRedis> {
  const [home, ...others] = regions;
  // No 5 s wait for more replicas before a full sync (Redis 7's default): boot time matters.
  const primary = await RedisServer.start(['--repl-diskless-sync-delay', '0'], options.placement?.(home));
  const replicas = new Map<string, RedisServer>();
  try {
    await Promise.all(
      others.map(async (region) => {
        const via = options.link ? await options.link(region, home, primary.host, primary.port) : primary;
        const replica = await RedisServer.start(['--replicaof', via.host, String(via.port)], options.placement?.(region));
        replicas.set(region, replica);
        await waitForLink(replica.port, replica.host, 30_000);
      }),
    );
  } catch (error) {
    await Promise.all([primary, ...replicas.values()].map((server) => server.stop()));
    throw error;
  }
  return {
    primary,
    replicas,
    stop: async () => {
      await Promise.all([primary, ...replicas.values()].map((server) => server.stop()));
    },
  };
}
