import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePorts } from './free-port.js';
import { reapOnExit, removeOnExit } from './reaper.js';

/**
 * Throwaway nats-server topologies for the lab and the e2e tests (Debian's nats-server
 * 2.9.10 on PATH). Every port is chosen at runtime and bound to 127.0.0.1 (or the node's
 * `host`, e.g. a region's namespace address), so these never collide with the shared
 * broker on :4222. "Ready" means JetStream answers, not merely that a port is open.
 */

/** How the lab places nodes: per-region host, a spawn prefix (netns) and a hook that routes inter-region links through proxies. */
export interface NatsTopologyOptions {
  /** Address each region's node listens on (default 127.0.0.1). */
  host?: (region: string) => string;
  /** Command prefix per region, e.g. `['ip', 'netns', 'exec', ns]`. */
  prefix?: (region: string) => string[];
  /**
   * Called once per directed inter-region link (gateway or route) with the target's address;
   * returns the address the `fromRegion` node dials instead (a link proxy).
   */
  link?: (fromRegion: string, toRegion: string, host: string, port: number) => Promise<{ host: string; port: number }>;
}

export interface NatsNode {
  name: string;
  region: string;
  host: string;
  port: number;
  clientUrl: string;
  pid: number | undefined;
  running: boolean;
}

export interface NatsTopology {
  kind: 'supercluster' | 'stretched' | 'single';
  /** Root temp dir holding configs, stores and logs (deleted by `stop()`). */
  dir: string;
  nodes: NatsNode[];
  node(region: string): NatsNode;
  /** SIGKILL one node (by PID) and wait until its port is closed. */
  kill(region: string): Promise<void>;
  /** Start a killed node again with the same config/store dir and wait until it serves JetStream. */
  restart(region: string): Promise<void>;
  /** Stop every node (SIGTERM, then SIGKILL after 3 s) and delete the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

const NATS_SERVER = 'nats-server';
const POLL_MS = 100;
const READY_TIMEOUT_MS = 30_000;
const KILL_TIMEOUT_MS = 10_000;
const TERM_GRACE_MS = 3_000;

/** Internal per-node state; the public `NatsNode` is a view of it. */
interface NodeState extends NatsNode {
  httpPort: number;
  configPath: string;
  logPath: string;
  /** Config parse errors and panics happen before/outside the -l log, on stderr. */
  stderrPath: string;
  prefix: string[];
  child: ChildProcess | undefined;
  /** Set when the child fails to spawn (e.g. ENOENT), so readiness fails fast. */
  spawnError: Error | undefined;
}

interface ReadyChecks {
  /** Wait for a JetStream meta leader (cluster / supercluster mode). */
  clustered: boolean;
  /** Gateway names this node must have outbound connections to (supercluster). */
  gateways: string[];
}

// ---------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Last `lines` lines of a log file, for error messages. */
function logTail(path: string, lines = 25): string {
  try {
    if (!existsSync(path)) return '(no log file)';
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(could not read log: ${String(error)})`;
  }
}

/** Log and stderr tails of one node, for error messages. */
function diagnostics(node: NodeState): string {
  const parts = [`--- ${node.logPath} ---\n${logTail(node.logPath)}`];
  const stderr = logTail(node.stderrPath, 10);
  if (stderr !== '(no log file)' && stderr !== '') parts.push(`--- ${node.stderrPath} ---\n${stderr}`);
  return parts.join('\n');
}

/** GET a monitor endpoint; resolves with status and parsed JSON (or undefined). Never hangs. */
/** The monitor fields the readiness probe reads (all optional: a server that is starting may leave any out). */
interface MonitorJson {
  disabled?: boolean;
  config?: unknown;
  meta_cluster?: { leader?: string };
  outbound_gateways?: Record<string, unknown>;
}
function getJson(url: string, timeoutMs = 1_000): Promise<{ status: number; body: MonitorJson | undefined }> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        let body: MonitorJson | undefined;
        try {
          body = JSON.parse(text) as MonitorJson;
        } catch {
          body = undefined;
        }
        resolve({ status: response.statusCode ?? 0, body });
      });
      response.on('error', reject);
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** True when something accepts TCP connections on host:port. */
function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // no RST within the timeout: treat as still open
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function isAlive(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/** Resolves when the child has exited, or false after `timeoutMs`. */
function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isAlive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

// ---------------------------------------------------------------------------------------
// Process management

function spawnNode(node: NodeState): void {
  node.spawnError = undefined;
  // Logging goes to a file (-l) so a failed start can be diagnosed from the error message;
  // stderr goes to a file too, since config errors are reported there, not in the log.
  const stderr = openSync(node.stderrPath, 'a');
  let child: ChildProcess;
  try {
    const command = [...node.prefix, NATS_SERVER, '-c', node.configPath, '-l', node.logPath];
    child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'ignore', stderr] });
  } finally {
    closeSync(stderr); // the child has its own copy of the descriptor
  }
  node.child = child;
  node.pid = child.pid;
  node.running = child.pid !== undefined;
  reapOnExit(child);
  const markGone = () => {
    // A restart replaces node.child; only the current process may mark the node down.
    if (node.child === child) node.running = false;
  };
  child.once('exit', markGone);
  child.once('error', (error) => {
    if (node.child === child) node.spawnError = error;
    markGone();
  });
}

/** One readiness probe; returns undefined when ready, or the reason it is not (yet). */
async function probe(node: NodeState, checks: ReadyChecks): Promise<string | undefined> {
  const base = `http://${node.host}:${node.httpPort}`;
  // 2.9.10 supports js-enabled-only: 200 once JetStream is enabled on this server.
  const health = await getJson(`${base}/healthz?js-enabled-only=true`);
  if (health.status !== 200) return `healthz ${health.status} ${JSON.stringify(health.body)}`;
  const jsz = (await getJson(`${base}/jsz`)).body;
  if (!jsz || jsz.disabled || !jsz.config) return 'jsz: JetStream not enabled yet';
  if (checks.clustered && !jsz.meta_cluster?.leader) return 'jsz: no meta leader yet';
  // Full healthz also requires this server's meta state and its streams/consumers to be current
  // (matters after restart: the node must have caught up before a test relies on it).
  const full = await getJson(`${base}/healthz`);
  if (full.status !== 200) return `healthz (full) ${full.status} ${JSON.stringify(full.body)}`;
  if (checks.gateways.length > 0) {
    const outbound = Object.keys((await getJson(`${base}/gatewayz`)).body?.outbound_gateways ?? {});
    const missing = checks.gateways.filter((name) => !outbound.includes(name));
    if (missing.length > 0) return `gatewayz: no outbound gateway to ${missing.join(', ')}`;
  }
  return undefined;
}

/** Poll every 100 ms (bounded) until the node serves JetStream; errors carry the log tail. */
async function waitReady(node: NodeState, checks: ReadyChecks, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let reason = 'not probed yet';
  while (Date.now() < deadline) {
    if (node.spawnError) throw new Error(`nats-server ${node.name} failed to spawn: ${node.spawnError.message}`);
    if (!isAlive(node.child)) {
      throw new Error(
        `nats-server ${node.name} exited (code ${node.child?.exitCode}, signal ${node.child?.signalCode}) before it was ready.\n${diagnostics(node)}`,
      );
    }
    try {
      const notReady = await probe(node, checks);
      if (notReady === undefined) return;
      reason = notReady;
    } catch (error) {
      reason = `monitor not reachable: ${(error as Error).message}`;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`nats-server ${node.name} not ready after ${timeoutMs} ms (last: ${reason}).\n${diagnostics(node)}`);
}

async function killNode(node: NodeState): Promise<void> {
  const child = node.child;
  if (child && isAlive(child)) {
    process.kill(child.pid!, 'SIGKILL');
    if (!(await waitForExit(child, KILL_TIMEOUT_MS)))
      throw new Error(`nats-server ${node.name} (pid ${child.pid}) did not exit after SIGKILL`);
  }
  node.running = false;
  // The exit event can precede the kernel releasing the socket; wait until it really refuses.
  const deadline = Date.now() + KILL_TIMEOUT_MS;
  while (await portOpen(node.host, node.port)) {
    if (Date.now() > deadline) throw new Error(`port ${node.port} of ${node.name} still open after kill`);
    await sleep(POLL_MS);
  }
}

/** SIGTERM (lets nats-server flush its store), SIGKILL after 3 s. */
async function terminateNode(node: NodeState): Promise<void> {
  const child = node.child;
  if (!child || !isAlive(child)) return;
  try {
    process.kill(child.pid!, 'SIGTERM');
  } catch {
    /* already gone */
  }
  if (await waitForExit(child, TERM_GRACE_MS)) return;
  try {
    process.kill(child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await waitForExit(child, KILL_TIMEOUT_MS);
}

// ---------------------------------------------------------------------------------------
// Topology assembly

interface NodeSpec {
  region: string;
  host: string;
  prefix: string[];
  port: number;
  httpPort: number;
  config: (storeDir: string) => string;
}

const url = (host: string, port: number) => `nats://${host}:${port}`;
const list = (items: string[]) => `[${items.map((item) => JSON.stringify(item)).join(', ')}]`;

function jetstreamBlock(storeDir: string): string {
  return `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_mem: 64MB, max_file: 256MB }`;
}

function commonHeader(region: string, host: string, port: number, httpPort: number): string {
  return [`server_name: n-${region}`, `listen: ${host}:${port}`, `http: ${host}:${httpPort}`].join('\n');
}

/**
 * With links through proxies, the nodes must not gossip their direct addresses: a peer would
 * dial them (bypassing the proxy on loopback; unreachable inside a namespace) and clients
 * would learn other regions' URLs. Nothing listens on port 1, so such a dial fails at once
 * and the configured (proxy) URLs are used.
 */
const UNREACHABLE = '127.0.0.1:1';

async function launch(
  kind: NatsTopology['kind'],
  prefix: string,
  specs: NodeSpec[],
  checksFor: (region: string) => ReadyChecks,
): Promise<NatsTopology> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const forgetDir = removeOnExit(dir);
  const nodes: NodeState[] = [];
  for (const spec of specs) {
    const configPath = join(dir, `${spec.region}.conf`);
    await writeFile(configPath, spec.config(join(dir, `store-${spec.region}`)) + '\n');
    nodes.push({
      name: `n-${spec.region}`,
      region: spec.region,
      host: spec.host,
      port: spec.port,
      clientUrl: url(spec.host, spec.port),
      prefix: spec.prefix,
      pid: undefined,
      running: false,
      httpPort: spec.httpPort,
      configPath,
      logPath: join(dir, `${spec.region}.log`),
      stderrPath: join(dir, `${spec.region}.stderr`),
      child: undefined,
      spawnError: undefined,
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(nodes.map((node) => terminateNode(node)));
      for (const node of nodes) node.running = false;
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      forgetDir();
    })());

  const find = (region: string): NodeState => {
    const node = nodes.find((candidate) => candidate.region === region);
    if (!node) throw new Error(`no NATS node for region '${region}' (have: ${nodes.map((n) => n.region).join(', ')})`);
    return node;
  };

  try {
    // Start all servers first: cluster members need each other to elect a meta leader.
    for (const node of nodes) spawnNode(node);
    await Promise.all(nodes.map((node) => waitReady(node, checksFor(node.region))));
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    kind,
    dir,
    nodes,
    node: find,
    async kill(region) {
      await killNode(find(region));
    },
    async restart(region) {
      const node = find(region);
      if (stopping) throw new Error('topology already stopped');
      if (isAlive(node.child)) throw new Error(`nats-server ${node.name} is still running; kill it first`);
      spawnNode(node);
      await waitReady(node, checksFor(region));
      // Peers reconnect with backoff; make sure they see the restarted node again too.
      const peers = nodes.filter((peer) => peer !== node && peer.running);
      await Promise.all(peers.map((peer) => waitReady(peer, checksFor(peer.region))));
    },
    stop,
  };
}

function checkRegions(regions: string[]): void {
  if (regions.length === 0) throw new Error('at least one region is required');
  if (new Set(regions).size !== regions.length) throw new Error(`duplicate regions: ${regions.join(', ')}`);
  for (const region of regions) {
    // Region names become server/cluster names and file names.
    if (!/^[A-Za-z0-9_-]+$/.test(region)) throw new Error(`invalid region name '${region}'`);
  }
}

/** Each region's host and prefix, and its dialled address of (toRegion, port) through `link` when given. */
function placement(regions: string[], options: NatsTopologyOptions) {
  const hostOf = (region: string) => options.host?.(region) ?? '127.0.0.1';
  const prefixOf = (region: string) => options.prefix?.(region) ?? [];
  /** The URL `from`'s node dials for `to`'s listener on `port` (itself: direct). */
  const dial = async (from: string, to: string, port: number): Promise<string> => {
    if (from === to || !options.link) return url(hostOf(to), port);
    const via = await options.link(from, to, hostOf(to), port);
    return url(via.host, via.port);
  };
  /** Every (from, to) pair's URL, links set up in parallel. */
  const dialAll = async (portOf: (region: string) => number): Promise<Map<string, string>> => {
    const pairs = regions.flatMap((from) => regions.map((to) => [from, to] as const));
    const urls = await Promise.all(pairs.map(([from, to]) => dial(from, to, portOf(to))));
    return new Map(pairs.map(([from, to], i) => [`${from}>${to}`, urls[i]]));
  };
  return { hostOf, prefixOf, dialAll };
}

/**
 * One one-server JetStream cluster per region (cluster name = region), joined by gateways
 * into a supercluster. Streams can be placed per region with `placement: { cluster }`.
 */
export async function startSupercluster(
  regions: string[] = ['asia', 'eu', 'us'],
  options: NatsTopologyOptions = {},
): Promise<NatsTopology> {
  checkRegions(regions);
  const { hostOf, prefixOf, dialAll } = placement(regions, options);
  const ports = await freePorts(regions.length * 4);
  const at = (i: number) => ({ client: ports[i * 4], http: ports[i * 4 + 1], cluster: ports[i * 4 + 2], gateway: ports[i * 4 + 3] });
  const gatewayUrls = await dialAll((region) => at(regions.indexOf(region)).gateway);
  const specs = regions.map((region, i): NodeSpec => {
    const p = at(i);
    const host = hostOf(region);
    // Comma-separated: 2.9.10's parser rejects array elements separated only by spaces ("} {").
    const gatewayList = regions.map((other) => `{ name: ${other}, urls: ${list([gatewayUrls.get(`${region}>${other}`)!])} }`).join(', ');
    const advertise = options.link ? `, advertise: ${JSON.stringify(UNREACHABLE)}` : '';
    return {
      region,
      host,
      prefix: prefixOf(region),
      port: p.client,
      httpPort: p.http,
      config: (storeDir) =>
        [
          commonHeader(region, host, p.client, p.http),
          jetstreamBlock(storeDir),
          // 2.9.10: a one-server cluster needs a route (to itself) or JetStream refuses to start
          // ("JetStream cluster requires configured routes or solicited leafnode for the system account").
          `cluster { name: ${region}, listen: ${host}:${p.cluster}, routes: ${list([url(host, p.cluster)])}, no_advertise: true }`,
          // Every gateway block lists all regions, itself included.
          `gateway { name: ${region}, listen: ${host}:${p.gateway}, gateways: [ ${gatewayList} ]${advertise} }`,
        ].join('\n'),
    };
  });
  return launch('supercluster', 'nats-sc-', specs, (region) => ({
    clustered: true,
    gateways: regions.filter((other) => other !== region),
  }));
}

/**
 * One JetStream cluster `geo` stretched over the regions (one server each, full-mesh routes,
 * tagged `region:<region>`), so R3 streams span all regions.
 */
export async function startStretchedCluster(
  regions: string[] = ['asia', 'eu', 'us'],
  options: NatsTopologyOptions = {},
): Promise<NatsTopology> {
  checkRegions(regions);
  const { hostOf, prefixOf, dialAll } = placement(regions, options);
  const ports = await freePorts(regions.length * 3);
  const at = (i: number) => ({ client: ports[i * 3], http: ports[i * 3 + 1], cluster: ports[i * 3 + 2] });
  const routeUrls = await dialAll((region) => at(regions.indexOf(region)).cluster);
  const specs = regions.map((region, i): NodeSpec => {
    const p = at(i);
    const host = hostOf(region);
    const routes = list(regions.map((other) => routeUrls.get(`${region}>${other}`)!));
    const advertise = options.link ? `, advertise: ${JSON.stringify(UNREACHABLE)}` : '';
    return {
      region,
      host,
      prefix: prefixOf(region),
      port: p.client,
      httpPort: p.http,
      config: (storeDir) =>
        [
          commonHeader(region, host, p.client, p.http),
          `server_tags: ${list([`region:${region}`])}`,
          jetstreamBlock(storeDir),
          // Full mesh; the route to itself is ignored by the server (and needed when there is only one).
          // no_advertise: clients must not learn other regions' direct URLs.
          `cluster { name: geo, listen: ${host}:${p.cluster}, routes: ${routes}, no_advertise: true${advertise} }`,
        ].join('\n'),
    };
  });
  return launch('stretched', 'nats-geo-', specs, () => ({ clustered: true, gateways: [] }));
}

/**
 * One standalone (non-clustered) JetStream server on a free port, for broker-restart tests:
 * `kill('local')` + `restart('local')` bring it back on the same port with the same store.
 */
export async function startSingleNode(region = 'local'): Promise<NatsTopology> {
  checkRegions([region]);
  const [port, httpPort] = await freePorts(2);
  const spec: NodeSpec = {
    region,
    host: '127.0.0.1',
    prefix: [],
    port,
    httpPort,
    config: (storeDir) => [commonHeader(region, '127.0.0.1', port, httpPort), jetstreamBlock(storeDir)].join('\n'),
  };
  return launch('single', 'nats-single-', [spec], () => ({ clustered: false, gateways: [] }));
}
