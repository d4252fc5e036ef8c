import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * The safety net of every topology: processes and temporary directories this process
 * started are SIGKILLed and removed when it exits, even after a crash or Ctrl-C, so a
 * failed test or lab run never leaves brokers or servers behind. ('exit' handlers must be
 * synchronous.)
 */
const children = new Set<ChildProcess>();
const directories = new Set<string>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const child of children) {
      try {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const directory of directories) {
      try {
        rmSync(directory, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      } catch {
        /* a just-killed server may still be releasing files */
      }
    }
  });
}

/** SIGKILL `child` when this process exits, unless it has exited by then. */
export function reapOnExit(child: ChildProcess): void {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
}

/** Remove `directory` when this process exits; the returned function forgets it (removed already). */
export function removeOnExit(directory: string): () => void {
  install();
  directories.add(directory);
  return () => directories.delete(directory);
}
