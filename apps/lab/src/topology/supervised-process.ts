import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { reapOnExit } from './reaper.js';

/**
 * One way to run the lab's processes (nats-server, redis-server, the sample app and the peers):
 * spawn, wait until ready, stop, start again, and say what went wrong. A start that fails names
 * the process and shows the tail of its output, since a broker or server that dies at boot
 * usually says why on stdout/stderr. Every child is reaped when this process exits.
 */

/** Answers `true` once the process serves, or a short reason it does not yet (shown if it never does). Throwing counts as not ready. */
export type ReadinessProbe = () => Promise<true | string>;

export interface SupervisedProcessOptions {
  /** Names the process in errors, e.g. `nats-server n-eu`, `region eu`. */
  name: string;
  command: string;
  args?: string[];
  /** Command prefix, e.g. `['ip', 'netns', 'exec', ns]`; it must exec, so the PID is the command's. */
  prefix?: string[];
  /** Extra environment, on top of this process's (read at each start). */
  env?: Record<string, string>;
  /** Polled every {@link SupervisedProcessOptions.pollMs} after each spawn; without one, a spawned process is ready. */
  ready?: ReadinessProbe;
  /** Default for {@link SupervisedProcess.start}. */
  readyTimeoutMs?: number;
  pollMs?: number;
  /** Runs before every start, e.g. to empty a data directory a restart must not load. */
  prepare?: () => Promise<void>;
  /** More text for errors, e.g. the tail of the process's own log file. */
  diagnostics?: () => string;
}

/** How a process ended: its exit code, or the signal that ended it (both null when it never ran). */
export interface ExitState {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
const STOP_TIMEOUT_MS = 15_000;
/** A SIGKILLed process that has not exited by then is stuck in the kernel: report it. */
const KILL_WAIT_MS = 10_000;
/** After an exit, how long to wait for the output pipes to drain before quoting them. */
const CLOSE_WAIT_MS = 1_000;
/** Output kept per process (stdout and stderr together); halved from the front when exceeded. */
const MAX_OUTPUT_CHARS = 64_000;
/** Output lines quoted in an error. */
const ERROR_TAIL_LINES = 50;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or undefined after `ms`; the timer is cleared either way, so it never holds the event loop. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Last `lines` lines of `text`. */
export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** A `--- path ---` section with the last `lines` lines of a log file, for {@link SupervisedProcessOptions.diagnostics}. */
export function fileTail(path: string, lines = 25): string {
  let text: string;
  try {
    text = existsSync(path) ? tail(readFileSync(path, 'utf8'), lines) : '(no log file)';
  } catch (error) {
    text = `(could not read log: ${String(error)})`;
  }
  return `--- ${path} ---\n${text}`;
}

/** The current child and what is known about it; replaced by each start. */
interface Run {
  child: ChildProcess;
  exit: ExitState | undefined;
  /** Set when the command could not be spawned at all (e.g. ENOENT). */
  spawnError: Error | undefined;
  /** Resolves once the OS has started it, or it could not be. */
  spawned: Promise<void>;
  exited: Promise<ExitState>;
  /** Resolves once stdout and stderr have closed too (all output read). */
  closed: Promise<void>;
}

/**
 * A command that can be started, probed, stopped and started again. State is per run: `start`
 * clears the output and the exit state of the previous one; `pid` stays the last run's after
 * it ended, so a test can check that PID is gone.
 */
export class SupervisedProcess {
  private run: Run | undefined;
  private captured = '';

  constructor(readonly options: SupervisedProcessOptions) {}

  get name(): string {
    return this.options.name;
  }

  /** PID of the last run (kept after it ended); undefined before the first start or when it could not be spawned. */
  get pid(): number | undefined {
    return this.run?.child.pid;
  }

  get running(): boolean {
    return this.run !== undefined && this.run.exit === undefined && this.run.child.pid !== undefined;
  }

  /** Undefined while running (or never started); the exit code once it ended (null when a signal ended it or it never ran). */
  get exitCode(): number | null | undefined {
    return this.run?.exit?.code;
  }

  /** Undefined while running (or never started); the signal that ended it, or null. */
  get signalCode(): NodeJS.Signals | null | undefined {
    return this.run?.exit?.signal;
  }

  /** What the current (or last) run wrote to stdout and stderr, up to the last 64,000 characters. */
  get output(): string {
    return this.captured;
  }

  /** Starts the command and waits until its probe answers (or rejects, naming it, with its output tail). */
  async start(timeoutMs = this.options.readyTimeoutMs ?? READY_TIMEOUT_MS): Promise<this> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${String(this.pid)})`);
    await this.options.prepare?.();
    await this.spawn().spawned;
    await this.waitReady(timeoutMs);
    return this;
  }

  /**
   * Polls the probe until it answers, also on a process that has been running a while (e.g. a
   * peer that must see a restarted node again). Rejects at once when the process ends. A process
   * that is not ready in time is left running: the caller decides (and can still read its output).
   */
  async waitReady(timeoutMs = this.options.readyTimeoutMs ?? READY_TIMEOUT_MS): Promise<void> {
    const probe = this.options.ready;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = this.run;
      if (!run) throw new Error(`${this.name} was never started`);
      if (run.spawnError) throw await this.failure(`failed to spawn: ${run.spawnError.message}`);
      if (run.exit) throw await this.failure(`exited with ${run.exit.code ?? run.exit.signal} before it was ready`);
      if (!probe) return;
      let reason: string;
      try {
        const answer = await probe();
        if (answer === true) return;
        reason = answer;
      } catch (error) {
        reason = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() >= deadline) throw await this.failure(`not ready after ${timeoutMs} ms (last: ${reason})`);
      await sleep(this.options.pollMs ?? POLL_MS);
    }
  }

  /**
   * Sends `signal` and waits until the process has exited; SIGKILL when it has not after
   * `timeoutMs`. Resolves with its exit code (null when a signal ended it). A no-op returning
   * the last exit code when it is not running.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS): Promise<number | null> {
    const run = this.run;
    if (!run || !this.running) return this.exitCode ?? null;
    run.child.kill(signal);
    const exited = await within(run.exited, timeoutMs);
    if (exited) return exited.code;
    run.child.kill('SIGKILL');
    const killed = await within(run.exited, KILL_WAIT_MS);
    if (!killed) throw new Error(`${this.name} (pid ${String(run.child.pid)}) did not exit after SIGKILL`);
    return killed.code;
  }

  /** SIGKILL: no goodbye to clients, peers or replicas. Resolves once it has exited. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL', KILL_WAIT_MS);
  }

  /** Stops it if it runs (SIGTERM, then SIGKILL after `stopTimeoutMs`) and starts it again. */
  async restart(stopTimeoutMs = STOP_TIMEOUT_MS): Promise<this> {
    await this.stop('SIGTERM', stopTimeoutMs);
    return this.start();
  }

  /** Resolves when the current run ends (at once if it has). */
  async exited(): Promise<ExitState> {
    if (!this.run) throw new Error(`${this.name} was never started`);
    return this.run.exited;
  }

  private spawn(): Run {
    const { command, args = [], prefix = [], env } = this.options;
    const argv = [...prefix, command, ...args];
    this.captured = '';
    const child = spawn(argv[0], argv.slice(1), {
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reapOnExit(child);
    let settle: (exit: ExitState) => void = () => undefined;
    const run: Run = {
      child,
      exit: undefined,
      spawnError: undefined,
      spawned: new Promise((resolve) => {
        child.once('spawn', () => resolve());
        child.once('error', () => resolve());
      }),
      exited: new Promise((resolve) => (settle = resolve)),
      closed: new Promise((resolve) => child.once('close', () => resolve())),
    };
    this.run = run;
    const keep = (chunk: Buffer): void => {
      if (this.run !== run) return; // a late chunk of an earlier run
      this.captured += chunk.toString();
      if (this.captured.length > MAX_OUTPUT_CHARS) this.captured = this.captured.slice(-MAX_OUTPUT_CHARS / 2);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('exit', (code, signal) => {
      run.exit = { code, signal };
      settle(run.exit);
    });
    child.on('error', (error) => {
      // Without a PID it never ran (no 'exit' will come); otherwise a failed kill: nothing ended.
      if (child.pid !== undefined) return;
      run.spawnError = error;
      run.exit = { code: null, signal: null };
      settle(run.exit);
    });
    return run;
  }

  /** An error naming the process, with what it said. */
  private async failure(what: string): Promise<Error> {
    const run = this.run;
    // 'exit' can come before the last output is read; wait briefly for the pipes to drain.
    if (run?.exit) await within(run.closed, CLOSE_WAIT_MS);
    const sections = [
      this.options.diagnostics?.(),
      this.captured.trim() ? `--- output ---\n${tail(this.captured, ERROR_TAIL_LINES)}` : undefined,
    ];
    const details = sections.filter((section) => section !== undefined && section !== '').join('\n');
    return new Error(`${this.name} ${what}.${details ? `\n${details}` : ''}`);
  }
}
