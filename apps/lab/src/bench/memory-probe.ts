/**
 * Preloaded into the server under test by connection-memory (`node --expose-gc --import
 * <this file>`), because the region app has no debug endpoint: on SIGWINCH it runs two full
 * GCs, then writes `process.memoryUsage()` and a sample number to GEO_BENCH_MEMORY_FILE.
 * SIGWINCH because Node gives it no meaning in a process without a terminal (SIGUSR1 starts
 * the inspector, and Nest's shutdown hooks drain on SIGUSR2).
 */
import { writeFileSync } from 'node:fs';

export interface MemorySample {
  sample: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const file = process.env.GEO_BENCH_MEMORY_FILE;
const gc = (globalThis as { gc?: () => void }).gc;
let sample = 0;

if (file) {
  process.on('SIGWINCH', () => {
    gc?.();
    gc?.();
    const usage = process.memoryUsage();
    const written: MemorySample = { sample: ++sample, ...usage };
    writeFileSync(file, JSON.stringify(written));
  });
}
