import { fileURLToPath } from 'node:url';
import type { RegionTarget } from '../load/load.types.js';
import { freePorts } from '../topology/free-port.js';
import { LinkProxy } from '../topology/link-proxy.js';
import { startStretchedCluster, startSupercluster, type NatsTopology } from '../topology/nats-cluster.js';
import { createRegionNetwork, type RegionNet } from '../topology/netns.js';
import { startRegionalRedis, waitForLink, type RegionalRedis } from '../topology/redis-servers.js';
import { REGION_ENTRY, ServerProcess } from '../topology/server-process.js';
import type { BrokerKind, Deployment, DeploymentOptions } from './deployment.types.js';

const PEER_ENTRIES = {
  socketio: fileURLToPath(new URL('../../dist/peers/socketio-server.js', import.meta.url)),
  ceiling: fileURLToPath(new URL('../../dist/peers/ceiling-server.js', import.meta.url)),
};

/**
 * The library's default `drainGraceMs` (left unset, so `drain` measures what a deploy gets:
 * a drain ends once its clients have left): how long a stopping server may take to drain.
 */
const DRAIN_GRACE_MS = 6_000;
const READY_TIMEOUT_MS = 30_000;

/** One proxied link between two regions (either direction), for cut, stall and heal. */
interface Link {
  from: string;
  to: string;
  kind: string;
  proxy: LinkProxy;
}

/** Byte and connection counters of every link proxy, by `kind from→to`. */
export type LinkStats = Record<string, { connections: number; open: number; bytesUp: number; bytesDown: number }>;

/** A `Deployment` plus what the lab and its tests may read beyond the contract. */
export interface LabDeployment extends Deployment {
  /** Counters of every link proxy (broker links: `nats-gateway asia→eu`, client links: `client[0] asia→eu`, ...). */
  linkStats(): LinkStats;
}

/**
 * Starts a deployment: a network (namespaces or loopback), the brokers of every region with
 * their inter-region links through proxies, client links to every remote region, and K
 * server processes per region. Resolves when every process answers ready; on failure, stops
 * what was started and rejects.
 */
export async function startDeployment(options: DeploymentOptions): Promise<LabDeployment> {
  const log = options.log ?? (() => undefined);
  const { regions, instances } = options;
  if (regions.length === 0 || new Set(regions).size !== regions.length)
    throw new Error(`regions must be distinct and non-empty: ${regions.join(',')}`);
  if (!Number.isInteger(instances) || instances < 1) throw new Error(`instances must be a positive integer, got ${instances}`);
  // The peers' adapters need Redis pub/sub.
  const broker: BrokerKind = options.impl === 'geo' ? options.broker : 'redis';
  const started = Date.now();

  const network = await createRegionNetwork({ regions: regions.length, mode: options.netns, lossPercent: options.lossPercent, log });
  log(
    network.namespaces
      ? `network: namespaces ${network.regions.map((region) => `${region.namespace!} (${region.host})`).join(', ')}`
      : `network: loopback, no packet loss (${network.reason ?? 'namespaces off'})`,
  );
  const netOf = (region: string): RegionNet => {
    const index = regions.indexOf(region);
    if (index < 0) throw new Error(`unknown region '${region}' (have ${regions.join(', ')})`);
    return network.regions[index];
  };
  const delays: Partial<Record<string, number>> = options.delays;
  const delayBetween = (a: string, b: string): number => delays[`${a}-${b}`] ?? delays[`${b}-${a}`] ?? options.defaultDelayMs;

  const links: Link[] = [];
  /** A proxy carrying traffic from `from` (listening on its side) into `to` (from `to`'s inbound address). */
  const openLink = async (
    from: string,
    to: string,
    kind: string,
    target: { host: string; port: number },
    listenHost: string,
  ): Promise<LinkProxy> => {
    const proxy = new LinkProxy(target, delayBetween(from, to), {
      listenHost,
      localAddress: netOf(to).inboundAddress,
      jitterMs: options.jitterMs,
      name: `${kind} ${from}→${to}`,
    });
    links.push({ from, to, kind, proxy });
    await proxy.start();
    return proxy;
  };
  const brokerLink =
    (kind: string) =>
    async (from: string, to: string, host: string, port: number): Promise<{ host: string; port: number }> => {
      const proxy = await openLink(from, to, kind, { host, port }, netOf(from).callerHost);
      return { host: proxy.host, port: proxy.port };
    };

  let nats: NatsTopology | undefined;
  let redis: RegionalRedis | undefined;
  /** Region → the Redis primary as that region's servers dial it (direct at home, else through a proxy). */
  const primaryUrlFor = new Map<string, string>();
  const servers = new Map<string, ServerProcess[]>();
  /** `${home}>${remote}>${k}` → the client proxy to instance k of `remote` (`home === remote`: the home link, with `homeClientLinks`). */
  const clientLinks = new Map<string, LinkProxy>();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const all = [...servers.values()].flat();
      await Promise.all(all.map((server) => server.stop('SIGTERM', 3_000).catch(() => undefined)));
      await Promise.all(links.map((link) => link.proxy.stop()));
      await Promise.all([nats?.stop(), redis?.stop()]);
      await network.destroy();
      log('deployment stopped');
    })());

  try {
    const placement = { host: (region: string) => netOf(region).host, prefix: (region: string) => netOf(region).prefix };
    const startBrokers = async (): Promise<void> => {
      if (broker === 'nats-supercluster') {
        nats = await startSupercluster(regions, { ...placement, link: brokerLink('nats-gateway') });
      } else if (broker === 'nats-stretched') {
        nats = await startStretchedCluster(regions, { ...placement, link: brokerLink('nats-route') });
      } else {
        redis = await startRegionalRedis(regions, {
          placement: (region) => ({ host: placement.host(region), prefix: placement.prefix(region) }),
          link: brokerLink('redis-replication'),
        });
        const primary = redis.primary;
        await Promise.all(
          regions.map(async (region, i) => {
            if (i === 0) {
              primaryUrlFor.set(region, primary.url);
              return;
            }
            const proxy = await openLink(
              region,
              regions[0],
              'redis-primary',
              { host: primary.host, port: primary.port },
              netOf(region).callerHost,
            );
            primaryUrlFor.set(region, `redis://${proxy.host}:${proxy.port}`);
          }),
        );
      }
    };
    const ports = await freePorts(regions.length * instances);
    const portOf = (region: string, k: number): number => ports[regions.indexOf(region) * instances + k];
    const startClientLinks = async (): Promise<void> => {
      const pending: Promise<void>[] = [];
      for (const home of regions) {
        if (options.homeClientLinks) {
          for (let k = 0; k < instances; k++) {
            // Same region: no delay, and no `localAddress`, so nftables' loss never applies to it.
            const proxy = new LinkProxy({ host: netOf(home).host, port: portOf(home, k) }, 0, { name: `client[${k}] ${home}→${home}` });
            links.push({ from: home, to: home, kind: `client[${k}]`, proxy });
            pending.push(
              proxy.start().then(() => {
                clientLinks.set(`${home}>${home}>${k}`, proxy);
              }),
            );
          }
        }
        for (const remote of regions) {
          if (home === remote) continue;
          for (let k = 0; k < instances; k++) {
            pending.push(
              openLink(home, remote, `client[${k}]`, { host: netOf(remote).host, port: portOf(remote, k) }, '127.0.0.1').then((proxy) => {
                clientLinks.set(`${home}>${remote}>${k}`, proxy);
              }),
            );
          }
        }
      }
      await Promise.all(pending);
    };
    await Promise.all([startBrokers(), startClientLinks()]);
    log(`brokers (${broker}) ready after ${Date.now() - started} ms`);

    const directory = regions.map((region) => `${region}=http://${netOf(region).host}:${portOf(region, 0)}`).join(',');
    const envFor = (region: string): Record<string, string> => {
      const env: Record<string, string> = {
        REGION: region,
        GEO_REGIONS: directory,
        GEO_NAMESPACE: options.namespace,
        GEO_DEMO_SECRET: options.demoSecret,
        GEO_QUIET: '1',
      };
      if (nats) {
        env.GEO_TRANSPORT = 'nats';
        env.GEO_NATS_URL = nats.node(region).clientUrl;
        if (broker === 'nats-supercluster') env.GEO_NATS_HOME_CLUSTER = region;
        else env.GEO_NATS_REPLICAS = String(Math.min(options.natsReplicas ?? 3, regions.length));
      } else if (redis) {
        env.GEO_TRANSPORT = 'redis';
        env.GEO_REDIS_URL = primaryUrlFor.get(region)!;
        const replica = redis.replicas.get(region);
        if (replica) env.GEO_REDIS_REPLICA_URL = replica.url;
      }
      return { ...env, ...options.env };
    };
    const entry = options.impl === 'geo' ? REGION_ENTRY : PEER_ENTRIES[options.impl];
    for (const region of regions) {
      servers.set(
        region,
        Array.from(
          { length: instances },
          (_, k) =>
            new ServerProcess({
              name: `${options.impl} ${region}-${k}`,
              entry,
              nodeArgs: options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [],
              env: envFor(region),
              host: netOf(region).host,
              port: portOf(region, k),
              prefix: netOf(region).prefix,
            }),
        ),
      );
    }
    await Promise.all([...servers.values()].flat().map((server) => server.start(READY_TIMEOUT_MS)));
    log(`${options.impl}: ${regions.length} regions × ${instances} instances ready after ${Date.now() - started} ms`);
  } catch (error) {
    await stop();
    throw error;
  }

  const serversOf = (region: string): ServerProcess[] => {
    const list = servers.get(region);
    if (!list) throw new Error(`unknown region '${region}' (have ${regions.join(', ')})`);
    return list;
  };
  const linksBetween = (a: string, b: string): Link[] => {
    netOf(a);
    netOf(b);
    return links.filter((link) => (link.from === a && link.to === b) || (link.from === b && link.to === a));
  };
  /** Every client link that ends in `region`: its own clients' and the other regions' failover links. */
  const clientLinksInto = (region: string): Link[] => links.filter((link) => link.to === region && link.kind.startsWith('client['));
  const byDistance = (home: string): string[] =>
    regions
      .filter((region) => region !== home)
      .sort((x, y) => delayBetween(home, x) - delayBetween(home, y) || regions.indexOf(x) - regions.indexOf(y));
  const target = (region: string, host: string, port: number): RegionTarget => ({
    region,
    httpUrl: `http://${host}:${port}`,
    wsUrl: options.impl === 'socketio' ? `http://${host}:${port}` : `ws://${host}:${port}/ws`,
  });

  return {
    regions: [...regions],
    get network() {
      return { namespaces: network.namespaces, reason: network.reason, lossPercent: network.lossPercent };
    },
    targetsFor(home, index) {
      const k = ((index % instances) + instances) % instances;
      const local = clientLinks.get(`${home}>${home}>${k}`) ?? serversOf(home)[k];
      return [
        target(home, local.host, local.port),
        ...byDistance(home).map((remote) => {
          const proxy = clientLinks.get(`${home}>${remote}>${k}`)!;
          return target(remote, proxy.host, proxy.port);
        }),
      ];
    },
    serverPids: () =>
      [...servers.values()]
        .flat()
        .map((server) => server.pid)
        .filter((pid): pid is number => pid !== undefined),
    brokerPids: () =>
      (nats
        ? nats.nodes.map((node) => (node.running ? node.pid : undefined))
        : [redis?.primary.pid, ...[...(redis?.replicas.values() ?? [])].map((r) => r.pid)]
      ).filter((pid): pid is number => pid !== undefined),
    async killRegion(region) {
      await Promise.all(serversOf(region).map((server) => server.kill()));
      log(`killed ${region} (${instances} processes, SIGKILL)`);
    },
    async startRegion(region) {
      await Promise.all(serversOf(region).map((server) => (server.running ? Promise.resolve(server) : server.start(READY_TIMEOUT_MS))));
      log(`started ${region}`);
    },
    async drainRegion(region) {
      // One at a time, so the region keeps serving while it rolls.
      for (const server of serversOf(region)) {
        await server.stop('SIGTERM', DRAIN_GRACE_MS + 10_000);
        await server.start(READY_TIMEOUT_MS);
        log(`drained and restarted ${server.name}`);
      }
    },
    async killBroker(which) {
      if (nats) {
        await nats.kill(which);
        return `nats n-${which} killed`;
      }
      const server = which === 'primary' ? redis!.primary : redis!.replicas.get(which);
      if (!server)
        throw new Error(`no Redis broker '${which}' (primary or a region with a replica: ${[...redis!.replicas.keys()].join(', ')})`);
      await server.kill();
      return which === 'primary' ? 'redis primary killed' : `redis replica ${which} killed`;
    },
    async restartBroker(which) {
      if (nats) {
        await nats.restart(which);
        log(`nats n-${which} restarted`);
        return;
      }
      const server = which === 'primary' ? redis!.primary : redis!.replicas.get(which);
      if (!server) throw new Error(`no Redis broker '${which}'`);
      await server.restart();
      // A restarted primary comes back empty; the replicas resync through their links.
      const replicas = which === 'primary' ? [...redis!.replicas.values()] : [server];
      await Promise.all(replicas.map((replica) => waitForLink(replica.port, replica.host, 30_000)));
      log(`redis ${which === 'primary' ? 'primary' : `replica ${which}`} restarted`);
    },
    cutLink(a, b) {
      for (const link of linksBetween(a, b)) link.proxy.cut();
      log(`link ${a}–${b} cut`);
    },
    stallLink(a, b) {
      for (const link of linksBetween(a, b)) link.proxy.stall();
      log(`link ${a}–${b} stalled`);
    },
    stallRegion(region) {
      netOf(region);
      if (!options.homeClientLinks) throw new Error(`stallRegion(${region}): the deployment was started without homeClientLinks`);
      const into = clientLinksInto(region);
      for (const link of into) link.proxy.stall();
      log(`region ${region} stalled (${into.length} client links black-holed)`);
    },
    healRegion(region) {
      for (const link of clientLinksInto(region)) link.proxy.heal();
      log(`region ${region} healed`);
    },
    healLink(a, b) {
      for (const link of linksBetween(a, b)) link.proxy.heal();
      log(`link ${a}–${b} healed`);
    },
    linkStats() {
      const stats: LinkStats = {};
      for (const link of links) {
        const { connections, open, bytesUp, bytesDown } = link.proxy.stats();
        stats[link.proxy.name] = { connections, open, bytesUp, bytesDown };
      }
      return stats;
    },
    async setLoss(percent) {
      await network.setLoss(percent);
      log(network.namespaces ? `loss ${percent}% on inter-region hops` : `loss ${percent}% requested but not simulated (no namespaces)`);
    },
    stop,
  };
}
