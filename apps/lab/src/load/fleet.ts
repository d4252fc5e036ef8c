import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientLog, ClientPlan, ProgressSample, PublishLog, WorkerCommand, WorkerMessage, WorkerPlan } from './load.types.js';

/** The built worker: beside this file in dist/, or in dist/ when this file runs from src/ (tests). */
function workerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const entry = here.endsWith(join('src', 'load')) ? join(here, '..', '..', 'dist', 'load', 'worker.js') : join(here, 'worker.js');
  if (!existsSync(entry)) throw new Error(`load worker not built: ${entry} is missing (run npm run build)`);
  return entry;
}

/** How long each step may take before the fleet gives up (never a hang). */
const PLAN_TIMEOUT_MS = 30_000;
const COLLECT_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 5000;
/** connect(): a base plus this much per client of the largest share. */
const CONNECT_BASE_MS = 90_000;
const CONNECT_PER_CLIENT_MS = 20;
/** The last bytes of a worker's stderr, quoted when it dies. */
const STDERR_TAIL = 4000;

export interface FleetOptions {
  workers: number;
  plan: Omit<WorkerPlan, 'worker' | 'clients'>;
  clients: ClientPlan[];
  /** The fleet's total, each time a worker reports (about once a second per worker). */
  onProgress?(total: ProgressSample): void;
}

export interface ConnectResult {
  /** Time to connect and join, per connected client, in ms. */
  connectMs: number[];
  failed: { id: string; error: string }[];
}

export interface FleetLogs {
  publishes: PublishLog[];
  clients: ClientLog[];
}

interface Waiter {
  type: WorkerMessage['type'];
  resolve(message: WorkerMessage): void;
  reject(error: Error): void;
}

/** One forked worker and what it last said. */
class WorkerHandle {
  progress: ProgressSample = { connected: 0, reconnecting: 0, published: 0, acked: 0, delivered: 0, errors: 0, bytesRead: 0 };
  stderr = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private waiters: Waiter[] = [];

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
    readonly clientIds: Set<string>,
    private readonly onFailure: (error: Error) => void,
    onProgress: () => void,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    child.stderr?.on('error', () => undefined);
    child.on('error', (error) => this.fail(new Error(`load worker ${index}: ${error.message}`)));
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      this.fail(new Error(`load worker ${index} exited (${signal ?? `code ${String(code)}`})${this.tail()}`));
    });
    child.on('message', (raw: unknown) => {
      const message = raw as WorkerMessage;
      if (message.type === 'progress') {
        this.progress = message.sample;
        onProgress();
        return;
      }
      if (message.type === 'fatal') return this.fail(new Error(`load worker ${index} failed: ${message.error}`));
      const waiter = this.waiters.find((candidate) => candidate.type === message.type);
      if (!waiter) return;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(message);
    });
  }

  send(command: WorkerCommand): void {
    if (this.exited || !this.child.connected) throw new Error(`load worker ${this.index} is gone${this.tail()}`);
    this.child.send(command, (error) => {
      if (error) this.fail(new Error(`load worker ${this.index}: IPC send failed: ${error.message}`));
    });
  }

  /** Sends `command` and waits for the answer of `type`, at most `timeoutMs`. */
  request<T extends WorkerMessage['type']>(
    command: WorkerCommand,
    type: T,
    timeoutMs: number,
  ): Promise<Extract<WorkerMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((candidate) => candidate !== waiter);
        reject(new Error(`load worker ${this.index}: no "${type}" within ${timeoutMs} ms${this.tail()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        type,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as Extract<WorkerMessage, { type: T }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
      try {
        this.send(command);
      } catch (error) {
        waiter.reject(error as Error);
      }
    });
  }

  private fail(error: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.onFailure(error);
  }

  private tail(): string {
    const text = this.stderr.trim();
    return text ? `; stderr: ${text.split('\n').slice(-8).join('\n')}` : '';
  }
}

/**
 * The lab's simulated clients, split over forked worker processes. Every await has a
 * timeout; a worker that dies or fails makes the pending and every later call reject with
 * its reason (and `failure` says it), never a hang.
 */
export class LoadFleet {
  private closed = false;
  /** The first worker failure seen, if any. */
  failure: Error | undefined;

  private readonly workers: WorkerHandle[] = [];
  private largestShare = 0;

  private constructor() {}

  /** Forks the workers and hands each its share of the clients (round-robin) and the plan. */
  static async start(options: FleetOptions): Promise<LoadFleet> {
    const entry = workerEntry();
    const count = Math.max(1, Math.min(Math.floor(options.workers), options.clients.length));
    const shares: ClientPlan[][] = Array.from({ length: count }, () => []);
    options.clients.forEach((client, i) => shares[i % count].push(client));
    const fleet = new LoadFleet();
    fleet.largestShare = Math.max(...shares.map((share) => share.length));
    const handles = fleet.workers;
    const onProgress = (): void => options.onProgress?.(fleet.progress());
    for (const [index, clients] of shares.entries()) {
      // Plain node: no jest, ts or inspector flags from this process.
      const child = fork(entry, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
      handles.push(
        new WorkerHandle(
          index,
          child,
          new Set(clients.map((client) => client.id)),
          (error) => {
            if (!fleet.closed) fleet.failure ??= error;
          },
          onProgress,
        ),
      );
    }
    try {
      await withTimeout(
        Promise.all(
          handles.map((handle, index) => {
            handle.send({ type: 'plan', plan: { ...options.plan, worker: index, clients: shares[index] } });
            // The worker answers with its first progress once the plan is in place.
            return new Promise<void>((resolve, reject) => {
              handle.child.once('message', () => resolve());
              handle.child.once('exit', () => reject(new Error(`load worker ${index} exited before its plan was in place`)));
            });
          }),
        ),
        PLAN_TIMEOUT_MS,
        'load workers did not take their plan',
      );
    } catch (error) {
      await fleet.close();
      throw error;
    }
    return fleet;
  }

  /** Opens every client and joins its rooms; resolves with every worker's connect times and failures. */
  async connect(): Promise<ConnectResult> {
    const timeoutMs = CONNECT_BASE_MS + this.largestShare * CONNECT_PER_CLIENT_MS;
    const answers = await this.all((handle) => handle.request({ type: 'connect' }, 'ready', timeoutMs));
    return { connectMs: answers.flatMap((answer) => answer.connectMs), failed: answers.flatMap((answer) => answer.failed) };
  }

  startPublishing(): void {
    this.broadcast({ type: 'publish-start' });
  }

  stopPublishing(): void {
    this.broadcast({ type: 'publish-stop' });
  }

  /** These clients stop reading their sockets for `ms`, then read again. */
  pauseReading(ids: string[], ms: number): void {
    this.sendToOwners(ids, (clientIds) => ({ type: 'pause-reading', clientIds, ms }));
  }

  /** These clients start publishing to every room they joined (`on`), at the plan's rate, or stop publishing. */
  setPublishing(ids: string[], on: boolean): void {
    this.sendToOwners(ids, (clientIds) => ({ type: 'set-publishing', clientIds, on }));
  }

  /** Every publish and every client log, from every worker. */
  async collect(): Promise<FleetLogs> {
    const answers = await this.all((handle) => handle.request({ type: 'collect' }, 'logs', COLLECT_TIMEOUT_MS));
    return { publishes: answers.flatMap((answer) => answer.publishes), clients: answers.flatMap((answer) => answer.clients) };
  }

  /** The sum of every worker's latest progress sample. */
  progress(): ProgressSample {
    const total: ProgressSample = { connected: 0, reconnecting: 0, published: 0, acked: 0, delivered: 0, errors: 0, bytesRead: 0 };
    for (const { progress } of this.workers) {
      total.connected += progress.connected;
      total.reconnecting += progress.reconnecting;
      total.published += progress.published;
      total.acked += progress.acked;
      total.delivered += progress.delivered;
      total.errors += progress.errors;
      total.bytesRead += progress.bytesRead;
    }
    return total;
  }

  /** Worker PIDs (for CPU and memory sampling of the load side). */
  pids(): number[] {
    return this.workers.flatMap((handle) => (handle.child.pid === undefined ? [] : [handle.child.pid]));
  }

  /** Asks every worker to close its clients and exit; kills by PID any that does not within 5 s. Never rejects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.workers.map(async (handle) => {
        if (handle.exited) return;
        const exited = new Promise<void>((resolve) => handle.child.once('exit', () => resolve()));
        try {
          handle.send({ type: 'close' });
        } catch {
          // gone already: the kill below makes sure
        }
        const timer = setTimeout(() => {
          if (!handle.exited && handle.child.pid !== undefined) process.kill(handle.child.pid, 'SIGKILL');
        }, EXIT_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Sends each worker that runs some of `ids` the command for its own share of them. */
  private sendToOwners(ids: string[], command: (clientIds: string[]) => WorkerCommand): void {
    this.check();
    for (const handle of this.workers) {
      const mine = ids.filter((id) => handle.clientIds.has(id));
      if (mine.length > 0) handle.send(command(mine));
    }
  }

  private broadcast(command: WorkerCommand): void {
    this.check();
    for (const handle of this.workers) handle.send(command);
  }

  private async all<T>(step: (handle: WorkerHandle) => Promise<T>): Promise<T[]> {
    this.check();
    return Promise.all(this.workers.map(step));
  }

  private check(): void {
    if (this.closed) throw new Error('the load fleet is closed');
    if (this.failure) throw this.failure;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
