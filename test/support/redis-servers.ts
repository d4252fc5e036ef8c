import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

// One clean-up for the e2e suites and the library's integration specs.
export { dropRedisNamespace } from '../../libs/geo-ws/src/testing/broker-namespaces.js';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** One redis-server process started by a test on a free loopback port. */
export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(args: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), args);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    // A fresh directory per launch: Redis loads a dump.rdb it finds in its directory (a
    // replica's full sync writes one), so a restart must not come back with old data, and
    // tests must not write into the repository.
    const dir = await mkdtemp(join(tmpdir(), 'geo-ws-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...this.args],
      {
        stdio: 'ignore',
      },
    );
    child.on('exit', () => void rm(dir, { recursive: true, force: true }));
    this.child = child;
    children.add(child);
    child.on('exit', () => children.delete(child));
    await waitUntil(async () => (await ping(this.port)) === 'PONG', `redis on ${this.port}`);
  }

  /** SIGKILL: no goodbye to clients or replicas. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

/** A primary and replicas (`--replicaof`), each replica's link up before this resolves. */
export async function startReplicated(replicas: number): Promise<{ primary: RedisServer; replicas: RedisServer[]; stop(): Promise<void> }> {
  const primary = await RedisServer.start();
  const started: RedisServer[] = [];
  for (let i = 0; i < replicas; i++) started.push(await RedisServer.start(['--replicaof', '127.0.0.1', String(primary.port)]));
  await Promise.all(started.map((replica) => waitForLink(replica.port)));
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
  const sentinels: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const config = join(dir, `sentinel-${port}.conf`);
    await writeFile(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `logfile ${join(dir, `sentinel-${port}.log`)}`,
        `sentinel monitor mymaster 127.0.0.1 ${primary.port} 2`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 5000',
        'sentinel parallel-syncs mymaster 1',
      ].join('\n'),
    );
    const child = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    children.add(child);
    child.on('exit', () => children.delete(child));
    sentinels.push(child);
    ports.push(port);
  }
  await Promise.all(ports.map((port) => waitUntil(async () => (await ping(port)) === 'PONG', `sentinel on ${port}`)));
  return {
    ports,
    dir,
    stop: async () => {
      for (const child of sentinels) child.kill('SIGKILL');
      if (!process.env.GEO_KEEP_SENTINEL_LOGS) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs one check on a short-lived connection; undefined when the server does not answer. */
async function probe<T>(port: number, check: (client: Redis) => Promise<T>): Promise<T | undefined> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
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

function ping(port: number): Promise<string | undefined> {
  return probe(port, (client) => client.ping());
}

/** Waits until a replica's replication link is up. */
export async function waitForLink(port: number): Promise<void> {
  await waitUntil(
    async () => (await probe(port, async (client) => (await client.info('replication')).includes('master_link_status:up'))) === true,
    `the replica on ${port} to sync`,
  );
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
  const create = spawn('redis-cli', ['--cluster', 'create', ...servers.map((server) => `127.0.0.1:${server.port}`), '--cluster-yes'], {
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
  if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);
  // Every node must agree the cluster is ok (slots assigned and known), not just the first.
  for (const server of servers) {
    await waitUntil(
      async () => (await probe(server.port, async (client) => (await client.cluster('INFO')).includes('cluster_state:ok'))) === true,
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
