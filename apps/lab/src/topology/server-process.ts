import { fileURLToPath } from 'node:url';
import { httpGet } from './probes.js';
import { SupervisedProcess } from './supervised-process.js';

/** The sample chat app's one-region entry (`npm run start:region`); same path from src/ and dist/. */
export const REGION_ENTRY = fileURLToPath(new URL('../../../chat/dist/region.js', import.meta.url));

export interface ServerProcessOptions {
  /** For messages, e.g. `eu-0`. */
  name: string;
  /** Script run with this Node (`process.execPath`). */
  entry: string;
  args?: string[];
  /** Options for Node itself, before the entry (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Extra environment (on top of this process's). */
  env?: Record<string, string>;
  /** Where it listens; readiness is probed at http://host:port. */
  host?: string;
  port: number;
  /** Command prefix, e.g. `['ip', 'netns', 'exec', ns]` (which execs, so the PID is the server's). */
  prefix?: string[];
  /** Ready when GET of this path answers 2xx. Default `/readyz`. */
  readyPath?: string;
}

/** One server process (a region instance of the sample app, a peer): start, wait until ready, signal, restart. */
export class ServerProcess {
  private readonly process: SupervisedProcess;

  constructor(readonly options: ServerProcessOptions) {
    const { name, entry, args = [], nodeArgs = [], env = {}, prefix = [] } = options;
    const readyUrl = `${this.url}${options.readyPath ?? '/readyz'}`;
    this.process = new SupervisedProcess({
      name,
      command: process.execPath,
      args: [...nodeArgs, entry, ...args],
      prefix,
      env: { ...env, PORT: String(this.port), HOST: this.host },
      ready: async () => {
        const { status } = await httpGet(readyUrl);
        return (status >= 200 && status < 300) || `GET ${readyUrl}: ${status}`;
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  get port(): number {
    return this.options.port;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://${this.host}:${this.port}/ws`;
  }

  get pid(): number | undefined {
    return this.running ? this.process.pid : undefined;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Undefined while it runs (or before the first start); its exit code, or null when a signal ended it. */
  get exitCode(): number | null | undefined {
    return this.process.exitCode;
  }

  get signal(): NodeJS.Signals | null | undefined {
    return this.process.signalCode;
  }

  /** Its stdout and stderr since the last start (the tail). */
  get log(): string {
    return this.process.output;
  }

  /** Starts the process and waits until the ready path answers 2xx. */
  async start(timeoutMs = 20_000): Promise<this> {
    await this.process.start(timeoutMs);
    return this;
  }

  /** Sends a signal and waits for the process to exit (SIGKILL after `timeoutMs`). */
  stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    return this.process.stop(signal, timeoutMs);
  }

  /** SIGKILL: no goodbye to clients or brokers. */
  async kill(): Promise<void> {
    await this.process.kill();
  }
}

/** One region of the sample chat app as its own process on 127.0.0.1 (`npm run start:region`), built beforehand. */
export class RegionProcess extends ServerProcess {
  constructor(
    readonly region: string,
    port: number,
    env: Record<string, string>,
    options: Partial<Omit<ServerProcessOptions, 'port' | 'env'>> = {},
  ) {
    super({
      name: `region ${region}`,
      entry: REGION_ENTRY,
      ...options,
      port,
      env: { GEO_QUIET: '1', ...env, REGION: region },
    });
  }
}
