import { execFile, execFileSync } from 'node:child_process';
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type NetnsMode = 'auto' | 'on' | 'off';

/** Where one region lives on the network. Without namespaces every address is 127.0.0.1. */
export interface RegionNet {
  /** Position of the region in the deployment. */
  index: number;
  /** `10.77.<subnet>.0/24` (unique on this machine while the namespace exists). */
  subnet: number;
  /** `geolab-<runid>-<index>`, or undefined on loopback. */
  namespace: string | undefined;
  /** Address the region's brokers and servers listen on: 10.77.<subnet>.2 (inside the namespace). */
  host: string;
  /** Address (root namespace) a link proxy for callers in this region listens on: 10.77.<subnet>.1. */
  callerHost: string;
  /** Source address of proxied connections INTO this region (nft drops a share of these): 10.77.<subnet>.3. */
  inboundAddress: string | undefined;
  /** Spawn prefix that runs a command inside the namespace (`ip netns exec` execs, so the PID is the command's). */
  prefix: string[];
}

export interface RegionNetwork {
  namespaces: boolean;
  /** Why namespaces are not used (mode off, not root, a missing tool, a failed set-up). */
  reason?: string;
  regions: RegionNet[];
  /** Loss now applied to inter-region hops, in percent (always 0 without namespaces). */
  readonly lossPercent: number;
  /** Drops `percent`% of packets to and from each region's inbound address (no-op on loopback). */
  setLoss(percent: number): Promise<void>;
  /** Deletes the namespaces (their veths go with them). Idempotent. */
  destroy(): Promise<void>;
}

const PREFIX = 'geolab-';
/** Host-side veth `geolab<N>`, namespace side `geolab<N>n`: interface names have at most 15 characters. */
const VETH = /^geolab(\d+)$/;
const LOCK_DIR = '/run/geolab.lock';
let sequence = 0;

const live = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: whatever a crashed run left must not outlive it.
  process.on('exit', () => {
    for (const namespace of live) {
      try {
        execFileSync('ip', ['netns', 'del', namespace], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  });
}

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args, { timeout: 10_000 })).stdout;
}

async function nft(namespace: string, script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', ['netns', 'exec', namespace, 'nft', '-f', '-'], { timeout: 10_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`nft in ${namespace}: ${stderr || error.message}`)) : resolve(),
    );
    child.on('error', reject);
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(script);
  });
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (
      await stat(`${dir}/${command}`).then(
        (info) => info.isFile(),
        () => false,
      )
    )
      return true;
  }
  return false;
}

/** Why namespaces cannot be used here, or undefined when they can (root, `ip` and `nft` present). */
export async function netnsUnavailableReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root (ip netns needs CAP_SYS_ADMIN)';
  if (!(await onPath('ip'))) return "'ip' (iproute2) is not installed";
  if (!(await onPath('nft'))) return "'nft' (nftables) is not installed";
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lab process that owns a namespace name (`geolab-<pid base 36>x<seq>-<i>`), if it parses. */
function ownerPid(namespace: string): number | undefined {
  const match = /^geolab-([0-9a-z]+)x[0-9a-z]+-\d+$/.exec(namespace);
  return match ? parseInt(match[1], 36) : undefined;
}

async function namespaceNames(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(PREFIX));
}

/**
 * Removes geolab namespaces whose lab process is gone (killing what still runs inside) and
 * geolab veths left without their namespace. Namespaces of a lab that still runs are kept,
 * so two labs can run side by side. Returns what was removed.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  const names = await namespaceNames();
  for (const namespace of names) {
    const owner = ownerPid(namespace);
    if (owner !== undefined && owner !== process.pid && pidAlive(owner)) continue;
    if (owner === process.pid && live.has(namespace)) continue;
    const pids = (await ip('netns', 'pids', namespace).catch(() => ''))
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await ip('netns', 'del', namespace).catch(() => undefined);
    removed.push(namespace);
  }
  const remaining = new Set(await namespaceNames());
  const links = await ip('-o', 'link', 'show', 'type', 'veth').catch(() => '');
  for (const line of links.split('\n')) {
    const name = /^\d+:\s+([^@:\s]+)/.exec(line)?.[1];
    if (!name || !VETH.test(name)) continue;
    const alias = /\salias\s+(\S+)/.exec(line)?.[1];
    if (alias && remaining.has(alias)) continue;
    await ip('link', 'del', name).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

/** Subnet numbers in use on this machine (10.77.N addresses and geolab veths). */
async function usedSubnets(): Promise<Set<number>> {
  const used = new Set<number>();
  const addresses = await ip('-4', '-o', 'addr', 'show');
  for (const match of addresses.matchAll(/inet 10\.77\.(\d+)\./g)) used.add(Number(match[1]));
  const links = await ip('-o', 'link', 'show');
  for (const match of links.matchAll(/^\d+:\s+geolab(\d+)[@:]/gm)) used.add(Number(match[1]));
  return used;
}

/** A machine-wide lock around subnet allocation, so two labs starting at once do not pick the same subnets. */
async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch {
      // A lab killed while holding it leaves it behind: take it over after 5 s.
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(LOCK_DIR).catch(() => undefined);
  }
}

function loopback(count: number, reason: string): RegionNetwork {
  const regions = Array.from({ length: count }, (_, index): RegionNet => ({
    index,
    subnet: -1,
    namespace: undefined,
    host: '127.0.0.1',
    callerHost: '127.0.0.1',
    inboundAddress: undefined,
    prefix: [],
  }));
  return { namespaces: false, reason, regions, lossPercent: 0, setLoss: () => Promise.resolve(), destroy: () => Promise.resolve() };
}

async function createRegion(index: number, subnet: number, namespace: string): Promise<RegionNet> {
  const host = `geolab${subnet}`;
  const peer = `${host}n`;
  const net = `10.77.${subnet}`;
  await ip('netns', 'add', namespace);
  live.add(namespace);
  await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', namespace);
  // The alias names the namespace, so a stale veth can be told from a live one.
  await ip('link', 'set', 'dev', host, 'alias', namespace);
  await ip('addr', 'add', `${net}.1/24`, 'dev', host);
  await ip('addr', 'add', `${net}.3/24`, 'dev', host);
  await ip('link', 'set', host, 'up');
  await ip('-n', namespace, 'addr', 'add', `${net}.2/24`, 'dev', peer);
  await ip('-n', namespace, 'link', 'set', peer, 'up');
  await ip('-n', namespace, 'link', 'set', 'lo', 'up');
  // No default route: the namespace reaches only 10.77.<subnet>.0/24, so nothing bypasses the proxies.
  await nft(
    namespace,
    [
      'table inet geolab {',
      '  chain input { type filter hook input priority 0; policy accept; }',
      '  chain output { type filter hook output priority 0; policy accept; }',
      '}',
    ].join('\n'),
  );
  return {
    index,
    subnet,
    namespace,
    host: `${net}.2`,
    callerHost: `${net}.1`,
    inboundAddress: `${net}.3`,
    prefix: ['ip', 'netns', 'exec', namespace],
  };
}

/**
 * One network namespace per region (`mode` on/auto), or loopback (`off`, or `auto` when
 * namespaces are not available here: the reason says why). `on` fails with the reason.
 */
export async function createRegionNetwork(options: {
  regions: number;
  mode: NetnsMode;
  lossPercent?: number;
  log?: (line: string) => void;
}): Promise<RegionNetwork> {
  if (options.mode === 'off') return loopback(options.regions, 'namespaces turned off (--netns off)');
  const unavailable = await netnsUnavailableReason();
  if (unavailable !== undefined) {
    if (options.mode === 'on') throw new Error(`network namespaces requested (--netns on) but unavailable: ${unavailable}`);
    return loopback(options.regions, unavailable);
  }
  installExitHook();
  const runId = `${process.pid.toString(36)}x${(sequence++).toString(36)}`;
  const created: RegionNet[] = [];
  const destroyAll = async (): Promise<void> => {
    await Promise.all(
      created.map(async (region) => {
        if (region.namespace === undefined) return;
        await ip('netns', 'del', region.namespace).catch(() => undefined);
        live.delete(region.namespace);
      }),
    );
    created.length = 0;
  };
  try {
    const stale = await removeStaleNamespaces();
    if (stale.length > 0) options.log?.(`netns: removed stale ${stale.join(', ')}`);
    await withLock(async () => {
      const used = await usedSubnets();
      const free = Array.from({ length: 255 }, (_, n) => n).filter((n) => !used.has(n));
      if (free.length < options.regions) throw new Error('no free 10.77.N.0/24 subnets');
      // Sequential: the set-up is a few dozen short `ip` calls; a half-built region is removed below.
      for (let index = 0; index < options.regions; index++) {
        const namespace = `${PREFIX}${runId}-${index}`;
        created.push({
          index,
          subnet: free[index],
          namespace,
          host: '',
          callerHost: '',
          inboundAddress: undefined,
          prefix: [],
        });
        created[index] = await createRegion(index, free[index], namespace);
      }
    });
  } catch (error) {
    await destroyAll();
    const reason = `namespace set-up failed: ${(error as Error).message.split('\n')[0]}`;
    if (options.mode === 'on') throw new Error(reason, { cause: error });
    return loopback(options.regions, reason);
  }

  const regions = [...created];
  let lossPercent = 0;
  let destroyed: Promise<void> | undefined;
  const network: RegionNetwork = {
    namespaces: true,
    regions,
    get lossPercent() {
      return lossPercent;
    },
    async setLoss(percent) {
      if (!(percent >= 0 && percent <= 100)) throw new Error(`loss must be within 0..100 %, got ${percent}`);
      // numgen random mod 10000 < percent*100: steps of 0.01 %.
      const threshold = Math.round(percent * 100);
      await Promise.all(
        regions.map((region) =>
          nft(
            region.namespace!,
            [
              'flush chain inet geolab input',
              'flush chain inet geolab output',
              ...(threshold > 0
                ? [
                    `add rule inet geolab input ip saddr ${region.inboundAddress!} numgen random mod 10000 < ${threshold} drop`,
                    `add rule inet geolab output ip daddr ${region.inboundAddress!} numgen random mod 10000 < ${threshold} drop`,
                  ]
                : []),
            ].join('\n'),
          ),
        ),
      );
      lossPercent = percent;
    },
    destroy() {
      destroyed ??= (async () => {
        created.push(...regions.filter((region) => !created.includes(region)));
        await destroyAll();
      })();
      return destroyed;
    },
  };
  if ((options.lossPercent ?? 0) > 0) {
    try {
      await network.setLoss(options.lossPercent ?? 0);
    } catch (error) {
      await network.destroy();
      throw error;
    }
  }
  return network;
}
