import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REGION_ENTRY = fileURLToPath(new URL('../../apps/chat/dist/region.js', import.meta.url));
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** One region of the sample chat app as its own process (`npm run start:region`), built beforehand. */
export class RegionProcess {
  private child: ChildProcess | undefined;
  private output = '';
  exitCode: number | null | undefined;

  constructor(
    readonly region: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process and waits until `/readyz` answers 200. */
  async start(timeoutMs = 20_000): Promise<this> {
    this.exitCode = undefined;
    this.output = '';
    const child = spawn(process.execPath, [REGION_ENTRY], {
      env: { ...process.env, ...this.env, REGION: this.region, PORT: String(this.port), GEO_QUIET: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    child.stdout.on('data', (chunk) => (this.output += chunk));
    child.stderr.on('data', (chunk) => (this.output += chunk));
    child.on('exit', (code) => {
      this.exitCode = code;
      running.delete(child);
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) throw new Error(`region ${this.region} exited with ${String(this.exitCode)}:\n${this.output}`);
      const ready = await fetch(`${this.url}/readyz`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) return this;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`region ${this.region} not ready after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    const child = this.child;
    if (!child || this.exitCode !== undefined) return this.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  get log(): string {
    return this.output;
  }
}
