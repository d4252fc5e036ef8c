import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePorts } from './free-port.js';
import { httpGet, waitForPortClosed } from './probes.js';
import { removeOnExit } from './reaper.js';
import { fileTail, SupervisedProcess } from './supervised-process.js';

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
const READY_TIMEOUT_MS = 30_000;
/** SIGTERM lets nats-server flush its store; SIGKILL after this. */
const TERM_GRACE_MS = 3_000;

/** Internal per-node state: the public view and the process behind it. */
interface NodeState {
  view: NatsNode;
  server: SupervisedProcess;
}

interface ReadyChecks {
  /** Wait for a JetStream meta leader (cluster / supercluster mode). */
  clustered: boolean;
  /** Gateway names this node must have outbound connections to (supercluster). */
  gateways: string[];
}

// ---------------------------------------------------------------------------------------
// Readiness

/** The monitor fields the readiness probe reads (all optional: a server that is starting may leave any out). */
interface MonitorJson {
  disabled?: boolean;
  config?: unknown;
  meta_cluster?: { leader?: string };
  outbound_gateways?: Record<string, unknown>;
}

/** GET a monitor endpoint: its status and parsed JSON (undefined when not JSON). */
async function getJson(url: string): Promise<{ status: number; body: MonitorJson | undefined }> {
  const { status, text } = await httpGet(url);
  try {
    return { status, body: JSON.parse(text) as MonitorJson };
  } catch {
    return { status, body: undefined };
  }
}

/** "Ready" means JetStream answers (and, clustered, has a meta leader and its gateways), not merely that a port is open. */
async function jetStreamReady(base: string, checks: ReadyChecks): Promise<true | string> {
  try {
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
    return true;
  } catch (error) {
    return `monitor not reachable: ${(error as Error).message}`;
  }
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
    const name = `n-${spec.region}`;
    // The server logs to a file (-l); config errors and panics come on stderr, which the process keeps.
    const logPath = join(dir, `${spec.region}.log`);
    const server = new SupervisedProcess({
      name: `nats-server ${name}`,
      command: NATS_SERVER,
      args: ['-c', configPath, '-l', logPath],
      prefix: spec.prefix,
      ready: () => jetStreamReady(`http://${spec.host}:${spec.httpPort}`, checksFor(spec.region)),
      readyTimeoutMs: READY_TIMEOUT_MS,
      diagnostics: () => fileTail(logPath),
    });
    const view: NatsNode = {
      name,
      region: spec.region,
      host: spec.host,
      port: spec.port,
      clientUrl: url(spec.host, spec.port),
      // The last PID stays readable after a kill, so a test can check it is gone.
      get pid() {
        return server.pid;
      },
      get running() {
        return server.running;
      },
    };
    nodes.push({ view, server });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // A node stuck after SIGKILL must not keep the directory from being removed.
      await Promise.all(nodes.map((node) => node.server.stop('SIGTERM', TERM_GRACE_MS).catch(() => undefined)));
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      forgetDir();
    })());

  const find = (region: string): NodeState => {
    const node = nodes.find((candidate) => candidate.view.region === region);
    if (!node) throw new Error(`no NATS node for region '${region}' (have: ${nodes.map((n) => n.view.region).join(', ')})`);
    return node;
  };

  try {
    // All servers start together: cluster members need each other to elect a meta leader.
    await Promise.all(nodes.map((node) => node.server.start()));
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    kind,
    dir,
    nodes: nodes.map((node) => node.view),
    node: (region) => find(region).view,
    async kill(region) {
      const { view, server } = find(region);
      await server.kill();
      // The exit event can precede the kernel releasing the socket; wait until it really refuses.
      await waitForPortClosed(view.host, view.port, view.name);
    },
    async restart(region) {
      const node = find(region);
      if (stopping) throw new Error('topology already stopped');
      if (node.server.running) throw new Error(`nats-server ${node.view.name} is still running; kill it first`);
      await node.server.start();
      // Peers reconnect with backoff; make sure they see the restarted node again too.
      const peers = nodes.filter((peer) => peer !== node && peer.server.running);
      await Promise.all(peers.map((peer) => peer.server.waitReady()));
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
