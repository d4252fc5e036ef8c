import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { reapOnExit } from './reaper.js';

/** The sample chat app's one-region entry (`npm run start:region`); same path from src/ and dist/. */
export const REGION_ENTRY = fileURLToPath(new URL('../../../chat/dist/region.js', import.meta.url));

/** Output kept per process for error messages (the tail). */
const MAX_OUTPUT_CHARS = 64_000;

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
  private child: ChildProcess | undefined;
  private output = '';
  exitCode: number | null | undefined;
  signal: NodeJS.Signals | null | undefined;

  constructor(readonly options: ServerProcessOptions) {}

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
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === undefined;
  }

  get log(): string {
    return this.output;
  }

  /** Starts the process and waits until the ready path answers 2xx. */
  async start(timeoutMs = 20_000): Promise<this> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${String(this.child?.pid)})`);
    this.exitCode = undefined;
    this.signal = undefined;
    this.output = '';
    const { entry, args = [], nodeArgs = [], env = {}, prefix = [] } = this.options;
    const command = [...prefix, process.execPath, ...nodeArgs, entry, ...args];
    const child = spawn(command[0], command.slice(1), {
      env: { ...process.env, ...env, PORT: String(this.port), HOST: this.host },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    reapOnExit(child);
    const keep = (chunk: Buffer): void => {
      this.output += chunk.toString();
      if (this.output.length > MAX_OUTPUT_CHARS) this.output = this.output.slice(-MAX_OUTPUT_CHARS / 2);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => {
      this.output += `\nspawn error: ${error.message}`;
      if (this.child === child && this.exitCode === undefined) this.exitCode = null;
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.exitCode = code;
      this.signal = signal;
    });
    const deadline = Date.now() + timeoutMs;
    const readyUrl = `${this.url}${this.options.readyPath ?? '/readyz'}`;
    while (Date.now() < deadline) {
      const exit = this.exitDescription();
      if (exit !== undefined) throw new Error(`${this.name} exited with ${exit}:\n${this.output}`);
      const ready = await fetch(readyUrl, { signal: AbortSignal.timeout(1_000) }).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) return this;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output}`);
  }

  /** How the current process ended, or undefined while it runs. */
  private exitDescription(): string | undefined {
    return this.exitCode === undefined ? undefined : String(this.exitCode ?? this.signal);
  }

  /** Sends a signal and waits for the process to exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    const child = this.child;
    if (!child || this.exitCode !== undefined) return this.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGKILL: no goodbye to clients or brokers. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
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
