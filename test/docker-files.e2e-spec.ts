/**
 * docker/: the files are checked here, since no machine of the project has a Docker engine
 * (the client only) to build the image or start the stacks:
 * - every NATS config under docker/nats passes `nats-server -t` (the installed server);
 * - the compose files pass `docker-compose config` (Debian's docker-compose 1.29, which
 *   needs no engine for it; scripts/services.sh installs it), and what they wire together
 *   holds: each region's app on its own region's NATS cluster or Redis replica, every
 *   mounted config present, published ports matching GEO_REGIONS;
 * - the Dockerfile's runtime stage: production dependencies only, a non-root user, a
 *   HEALTHCHECK on /readyz, the files the app reads at run time copied where it looks.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCKER = join(ROOT, 'docker');
const NATS_DIR = join(DOCKER, 'nats');
const REGIONS = ['asia', 'eu', 'us'];

interface Run {
  status: number | null;
  output: string;
  stdout: string;
}

function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 15_000, ...options });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}`.trim() };
}

/** The first `name` on PATH, or undefined. */
function which(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, name))
    .find((file) => existsSync(file));
}

// ---- NATS configs (a small reader for the flat layout of docker/nats/*.conf) ----

interface NatsConfig {
  file: string;
  serverName: string;
  cluster: string;
  /** host:port of each route. */
  routes: string[];
  gatewayName: string;
  /** Gateway name → host:port of its URLs. */
  gateways: Map<string, string[]>;
}

function hostsOf(urls: string): string[] {
  return [...urls.matchAll(/nats:\/\/([\w.-]+:\d+)/g)].map((match) => match[1]);
}

/** The `name { ... }` block (one level of nested braces). */
function block(text: string, name: string, file: string): string {
  const match = new RegExp(`^${name}\\s*\\{((?:[^{}]|\\{[^{}]*\\})*)\\}`, 'm').exec(text);
  if (!match) throw new Error(`${file}: no ${name} { } block`);
  return match[1];
}

function field(text: string, name: string, file: string): string {
  const match = new RegExp(`^\\s*${name}\\s*:\\s*(\\S+)`, 'm').exec(text);
  if (!match) throw new Error(`${file}: no ${name}`);
  return match[1];
}

function readNatsConfig(file: string): NatsConfig {
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('\n');
  const cluster = block(text, 'cluster', file);
  const gateway = block(text, 'gateway', file);
  const gateways = new Map<string, string[]>();
  for (const entry of gateway.matchAll(/\{\s*name:\s*([\w-]+),\s*urls:\s*\[([^\]]*)\]\s*\}/g)) gateways.set(entry[1], hostsOf(entry[2]));
  return {
    file,
    serverName: field(text, 'server_name', file),
    cluster: field(cluster, 'name', file),
    routes: hostsOf(/routes\s*:\s*\[([^\]]*)\]/.exec(cluster)?.[1] ?? ''),
    gatewayName: field(gateway.replace(/gateways\s*:\s*\[[^\]]*\]/, ''), 'name', file),
    gateways,
  };
}

const natsConfigFiles = readdirSync(NATS_DIR)
  .filter((name) => name.endsWith('.conf'))
  .sort()
  .map((name) => join(NATS_DIR, name));

// ---- compose files: `docker-compose config`, read as JSON ----

const dockerCompose = which('docker-compose');

/**
 * `docker-compose config` of `file`, normalized by docker-compose itself (anchors merged,
 * variables substituted, relative paths made absolute), as JSON: the YAML is read by the
 * Python that runs docker-compose (its shebang), which has PyYAML since docker-compose needs it.
 */
function composeConfig(file: string): any {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GEO_')));
  const config = run(dockerCompose!, ['-f', file, 'config'], { env, cwd: ROOT });
  if (config.status !== 0) throw new Error(`docker-compose -f ${file} config failed: ${config.output}`);
  const python = /^#!\s*(\S+)/.exec(readFileSync(dockerCompose!, 'utf8'))?.[1] ?? 'python3';
  const json = run(python, ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: config.stdout });
  if (json.status !== 0) throw new Error(`reading the output of docker-compose config: ${json.output}`);
  return JSON.parse(json.stdout);
}

/** `region=url` pairs, or one value for every region (as apps/chat/src/config.ts reads them). */
function valueFor(value: string, region: string): string | undefined {
  if (!value.includes('=')) return value;
  const entry = value
    .split(',')
    .map((pair) => pair.trim().split(/=(.*)/s))
    .find(([name]) => name === region);
  return entry?.[1];
}

function chatServices(config: any): [string, any][] {
  return Object.entries<any>(config.services).filter(([, service]) => service.environment?.REGION !== undefined);
}

/** The host port published for `containerPort` of a service (long or short syntax). */
function publishedPort(service: any, containerPort: number): number | undefined {
  for (const port of service.ports ?? []) {
    if (typeof port === 'object' && Number(port.target) === containerPort) return Number(port.published);
    if (typeof port === 'string' && Number(port.split(':').at(-1)) === containerPort) return Number(port.split(':').at(-2));
  }
  return undefined;
}

function healthyDependencies(service: any): string[] {
  return Object.entries<any>(service.depends_on ?? {})
    .filter(([, dependency]) => dependency.condition === 'service_healthy')
    .map(([name]) => name);
}

// ---- Dockerfile: stages and instructions (continuation lines joined) ----

interface Instruction {
  keyword: string;
  args: string;
}

function readDockerfile(file: string): { name: string; instructions: Instruction[] }[] {
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() && !line.trim().startsWith('#'));
  const stages: { name: string; instructions: Instruction[] }[] = [];
  for (const line of lines) {
    const [, keyword, args] = /^\s*(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!keyword) continue;
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() };
    if (instruction.keyword === 'FROM') stages.push({ name: / AS (\S+)/i.exec(args)?.[1] ?? String(stages.length), instructions: [] });
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

/** COPY's sources and destination (flags such as --from dropped), and its --from stage. */
function copyOf(instruction: Instruction): { from?: string; sources: string[]; destination: string } {
  const words = instruction.args.split(/\s+/);
  const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((word) => !word.startsWith('--'));
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

const DOCKERFILE = join(DOCKER, 'Dockerfile');
const stages = readDockerfile(DOCKERFILE);
const runtime = stages.at(-1)!;
const WORKDIR = '/app';

/** Where a COPY in `/app` puts `path` (a destination ending in / keeps the source's name). */
function destinationOf(destination: string, source: string): string {
  const target = destination.endsWith('/') ? posix.join(destination, posix.basename(source)) : destination;
  return posix.normalize(target.startsWith('/') ? posix.relative(WORKDIR, target) : target).replace(/\/$/, '');
}

describe('docker/ files (checked without a Docker engine)', () => {
  describe('NATS configs (docker/nats)', () => {
    const configs = natsConfigFiles.map(readNatsConfig);

    it('one cluster of servers per region, named after it', () => {
      expect(natsConfigFiles.length).toBeGreaterThanOrEqual(REGIONS.length);
      expect([...new Set(configs.map((config) => config.cluster))].sort()).toEqual([...REGIONS].sort());
      for (const config of configs) {
        expect(`${relative(NATS_DIR, config.file)}: ${config.serverName}`).toBe(`${config.serverName}.conf: ${config.serverName}`);
        expect(config.gatewayName).toBe(config.cluster);
      }
    });

    it.each(natsConfigFiles.map((file) => [relative(ROOT, file), file]))('%s passes nats-server -t', (_, file) => {
      // -t parses and checks the file without resolving the hostnames of routes and gateways.
      const result = run('nats-server', ['-t', '-c', file]);
      expect({ status: result.status, output: result.output }).toEqual({
        status: 0,
        output: `nats-server: configuration file ${file} is valid`,
      });
    });

    it('nats-server -t rejects a broken config (the check above can fail)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'geo-ws-docker-'));
      try {
        const broken = join(dir, 'broken.conf');
        writeFileSync(broken, readFileSync(natsConfigFiles[0], 'utf8').replace('routes:', 'routez:'));
        const result = run('nats-server', ['-t', '-c', broken]);
        expect(result.status).not.toBe(0);
        expect(result.output).toContain('unknown field "routez"');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('routes stay inside the cluster, gateways name every cluster with its own servers', () => {
      const byHost = new Map(configs.map((config) => [config.serverName, config]));
      const clusterOf = (hostPort: string) => byHost.get(hostPort.split(':')[0])?.cluster;
      for (const config of configs) {
        const name = relative(ROOT, config.file);
        expect({ name, routes: config.routes.map(clusterOf) }).toEqual({ name, routes: config.routes.map(() => config.cluster) });
        expect({ name, gateways: [...config.gateways.keys()].sort() }).toEqual({ name, gateways: [...REGIONS].sort() });
        for (const [gateway, urls] of config.gateways) {
          expect({ name, gateway, urls: urls.map(clusterOf) }).toEqual({ name, gateway, urls: urls.map(() => gateway) });
        }
      }
    });
  });

  describe('compose files', () => {
    it('docker-compose is installed (scripts/services.sh installs Debian`s package)', () => {
      expect(dockerCompose ?? 'docker-compose not on PATH: run bash scripts/services.sh').toMatch(/docker-compose$/);
    });

    it.each(['compose.nats.yml', 'compose.redis.yml'])('docker/%s passes docker-compose config -q', (name) => {
      const result = run(dockerCompose!, ['-f', join(DOCKER, name), 'config', '-q'], { cwd: ROOT });
      expect({ status: result.status, output: result.output }).toEqual({ status: 0, output: '' });
    });

    it.each(['compose.nats.yml', 'compose.redis.yml'])(
      'docker/%s: one app per region, built from docker/Dockerfile, published on its GEO_REGIONS port',
      (name) => {
        const config = composeConfig(join(DOCKER, name));
        const apps = chatServices(config);
        expect(apps.map(([, service]) => service.environment.REGION).sort()).toEqual([...REGIONS].sort());
        const containerPort = Number(/PORT=(\d+)/.exec(runtime.instructions.map((i) => i.args).join('\n'))?.[1]);
        const published: number[] = [];
        for (const [serviceName, service] of apps) {
          const { REGION: region, GEO_REGIONS: regions, PORT: port } = service.environment;
          expect({ serviceName, build: service.build }).toEqual({
            serviceName,
            build: { context: ROOT.replace(/\/$/, ''), dockerfile: 'docker/Dockerfile' },
          });
          // Every app serves the same directory (the page opens a pane on each region).
          expect(regions).toBe(apps[0][1].environment.GEO_REGIONS);
          const url = new URL(valueFor(regions, region)!);
          const hostPort = publishedPort(service, Number(port ?? containerPort));
          expect({ serviceName, hostPort }).toEqual({ serviceName, hostPort: Number(url.port) });
          published.push(hostPort!);
        }
        expect(new Set(published).size).toBe(published.length);
      },
    );

    it('compose.nats.yml: each server mounts its own config from docker/nats, every config is used, every route host is a service', () => {
      const config = composeConfig(join(DOCKER, 'compose.nats.yml'));
      const servers = Object.entries<any>(config.services).filter(([, service]) => String(service.image).startsWith('nats'));
      const mounted: string[] = [];
      for (const [serviceName, service] of servers) {
        const command: string[] = service.command;
        const configPath = command[command.indexOf('--config') + 1];
        const mount = (service.volumes as any[])
          .map((volume) => (typeof volume === 'string' ? { source: volume.split(':')[0], target: volume.split(':')[1] } : volume))
          .find((volume) => volume.target === configPath);
        expect({ serviceName, configPath, mounted: existsSync(mount?.source ?? '') }).toEqual({ serviceName, configPath, mounted: true });
        expect(dirname(mount.source)).toBe(NATS_DIR);
        // Routes and gateways name servers by their service names.
        expect({ serviceName, serverName: readNatsConfig(mount.source).serverName }).toEqual({ serviceName, serverName: serviceName });
        mounted.push(mount.source);
      }
      expect(mounted.sort()).toEqual(natsConfigFiles);
      for (const nats of natsConfigFiles.map(readNatsConfig)) {
        const hosts = [...nats.routes, ...[...nats.gateways.values()].flat()].map((hostPort) => hostPort.split(':')[0]);
        expect(hosts.filter((host) => !(host in config.services))).toEqual([]);
      }
    });

    it('compose.nats.yml: each region`s app connects to its own region`s cluster and waits for it and the home cluster', () => {
      const config = composeConfig(join(DOCKER, 'compose.nats.yml'));
      const clusterOf = new Map(natsConfigFiles.map(readNatsConfig).map((nats) => [nats.serverName, nats.cluster]));
      for (const [serviceName, service] of chatServices(config)) {
        const env = service.environment;
        const region = env.REGION;
        expect({ serviceName, transport: env.GEO_TRANSPORT }).toEqual({ serviceName, transport: 'nats' });
        const host = new URL(valueFor(env.GEO_NATS_URL, region)!).hostname;
        expect({ serviceName, region, cluster: clusterOf.get(host) }).toEqual({ serviceName, region, cluster: region });
        expect([...clusterOf.values()]).toContain(env.GEO_NATS_HOME_CLUSTER);
        const needed = [...clusterOf]
          .filter(([, cluster]) => cluster === region || cluster === env.GEO_NATS_HOME_CLUSTER)
          .map(([name]) => name);
        expect({ serviceName, waitsFor: healthyDependencies(service).sort() }).toEqual({ serviceName, waitsFor: needed.sort() });
        // R3 needs three servers in each cluster that holds a stream.
        const smallest = Math.min(...REGIONS.map((cluster) => [...clusterOf.values()].filter((c) => c === cluster).length));
        expect(Number(env.GEO_NATS_REPLICAS ?? 1)).toBeLessThanOrEqual(smallest);
      }
    });

    it('compose.redis.yml: each region`s app writes to the primary and reads its own region`s replica of it', () => {
      const config = composeConfig(join(DOCKER, 'compose.redis.yml'));
      const replicaOf = (service: any): string | undefined => {
        const command: string[] = service.command ?? [];
        const at = command.indexOf('--replicaof');
        return at < 0 ? undefined : command[at + 1];
      };
      const replicas: string[] = [];
      for (const [serviceName, service] of chatServices(config)) {
        const env = service.environment;
        const region = env.REGION;
        expect({ serviceName, transport: env.GEO_TRANSPORT }).toEqual({ serviceName, transport: 'redis' });
        const primary = new URL(env.GEO_REDIS_URL).hostname;
        expect({ serviceName, primary, isPrimary: primary in config.services && !replicaOf(config.services[primary]) }).toEqual({
          serviceName,
          primary,
          isPrimary: true,
        });
        const replica = new URL(valueFor(env.GEO_REDIS_REPLICA_URL, region)!).hostname;
        expect({ serviceName, replica }).toEqual({ serviceName, replica: `redis-${region}` });
        expect({ replica, of: replicaOf(config.services[replica]) }).toEqual({ replica, of: primary });
        expect({ serviceName, waitsFor: healthyDependencies(service).sort() }).toEqual({
          serviceName,
          waitsFor: [primary, replica].sort(),
        });
        replicas.push(replica);
      }
      expect(new Set(replicas).size).toBe(REGIONS.length);
    });
  });

  describe('docker/Dockerfile', () => {
    const all = runtime.instructions;
    const of = (keyword: string) => all.filter((instruction) => instruction.keyword === keyword);

    it('the runtime stage installs production dependencies only, with the lockfile', () => {
      expect(stages.length).toBeGreaterThanOrEqual(2);
      const installs = of('RUN').filter((instruction) => /\bnpm (ci|install|i)\b/.test(instruction.args));
      expect(installs.length).toBeGreaterThan(0);
      for (const install of installs) expect(install.args).toMatch(/\bnpm ci\b.*--omit=dev\b/);
    });

    it('the runtime stage runs as a non-root user, with NODE_ENV=production', () => {
      const user = of('USER').at(-1)?.args;
      expect(user).toBeDefined();
      expect(['root', '0', '0:0']).not.toContain(user);
      expect(
        of('ENV')
          .map((instruction) => instruction.args)
          .join(' '),
      ).toMatch(/\bNODE_ENV=production\b/);
    });

    it('HEALTHCHECK: GET /readyz on the app`s port, with Node (slim images have no curl or wget)', () => {
      const [healthcheck] = of('HEALTHCHECK');
      expect(healthcheck.args).toMatch(/CMD \["node", "-e", .*\/readyz/);
      expect(healthcheck.args).toContain('process.env.PORT');
      const port = /PORT=(\d+)/.exec(
        of('ENV')
          .map((instruction) => instruction.args)
          .join(' '),
      )?.[1];
      expect(of('EXPOSE').map((instruction) => instruction.args)).toEqual([port]);
      expect(of('CMD').at(-1)?.args).toBe('["node", "apps/chat/dist/region.js"]');
    });

    it('every workspace`s package.json is copied before each npm ci (the lockfile lists them all)', () => {
      const workspaces: string[] = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).workspaces;
      const packages = workspaces
        .flatMap((pattern) =>
          readdirSync(join(ROOT, pattern.replace(/\/\*$/, ''))).map((dir) => posix.join(pattern.replace(/\/\*$/, ''), dir)),
        )
        .filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
        .map((dir) => `${dir}/package.json`);
      for (const stage of stages) {
        const ci = stage.instructions.findIndex((instruction) => /\bnpm ci\b/.test(instruction.args));
        const copied = stage.instructions
          .slice(0, ci)
          .filter((instruction) => instruction.keyword === 'COPY')
          .flatMap((instruction) => {
            const copy = copyOf(instruction);
            return copy.sources.map((source) => destinationOf(copy.destination, source));
          });
        expect({ stage: stage.name, copied: packages.filter((file) => copied.includes(file)) }).toEqual({
          stage: stage.name,
          copied: packages,
        });
      }
    });

    it('the runtime stage has what the app reads from disk where bootstrap.ts looks for it', () => {
      // PUBLIC_DIR and SDK_DIR: paths relative to apps/chat/dist/bootstrap.js.
      const bootstrap = readFileSync(join(ROOT, 'apps/chat/src/bootstrap.ts'), 'utf8');
      const dirs = [...bootstrap.matchAll(/new URL\('([^']+)', import\.meta\.url\)/g)].map((match) =>
        posix.join('apps/chat/dist', match[1]),
      );
      expect(dirs.length).toBeGreaterThan(0);
      const copied = of('COPY').flatMap((instruction) => {
        const copy = copyOf(instruction);
        return copy.sources.map((source) => destinationOf(copy.destination, source));
      });
      for (const dir of [...dirs, 'apps/chat/dist', 'libs/geo-ws/dist'])
        expect({ dir, copied: copied.includes(dir) }).toEqual({ dir, copied: true });
    });

    it('every file copied from the build context exists and is let through by docker/Dockerfile.dockerignore', () => {
      const allowed = readFileSync(join(DOCKER, 'Dockerfile.dockerignore'), 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('!'))
        .map((line) => line.slice(1).trim());
      const sources = stages
        .flatMap((stage) => stage.instructions)
        .filter((instruction) => instruction.keyword === 'COPY')
        .map(copyOf)
        .filter((copy) => copy.from === undefined)
        .flatMap((copy) => copy.sources);
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) {
        const through = allowed.some((pattern) => source === pattern || source.startsWith(`${pattern}/`));
        expect({ source, exists: existsSync(join(ROOT, source)), through }).toEqual({ source, exists: true, through: true });
      }
    });

    it('the broker clients the app loads at run time are its dependencies, not dev-only in the lockfile, so npm ci --omit=dev keeps them', () => {
      // Optional peers of @geo-ws/nest: the app must declare them, and a lockfile that flags
      // one "dev" would leave GEO_TRANSPORT=nats or redis failing in the image.
      const brokerClients = ['@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/kv', 'ioredis', 'prom-client'];
      const chat = JSON.parse(readFileSync(join(ROOT, 'apps/chat/package.json'), 'utf8'));
      expect(Object.keys(chat.dependencies)).toEqual(expect.arrayContaining(brokerClients));
      const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
      const devOnly: string[] = [];
      const seen = new Set<string>();
      const visit = (name: string) => {
        const key = `node_modules/${name}`;
        if (seen.has(key)) return;
        seen.add(key);
        const entry = lock.packages[key];
        if (!entry || entry.dev) devOnly.push(name);
        for (const dependency of Object.keys(entry?.dependencies ?? {})) visit(dependency);
      };
      for (const name of brokerClients) visit(name);
      expect(devOnly).toEqual([]);
    });
  });
});
