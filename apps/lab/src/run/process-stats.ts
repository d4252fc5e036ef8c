import { readFileSync } from 'node:fs';

/** Linux reports CPU time in clock ticks; 100 per second on every kernel this lab runs on (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) and RSS of one process from /proc; undefined once it is gone. */
export function readProcess(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuSeconds, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU used by a changing set of processes (regions are killed and restarted): each PID's
 * last reading is kept, so a process that dies keeps what it used up to its last sample.
 */
export class CpuMeter {
  private readonly last = new Map<number, number>();
  private readonly first = new Map<number, number>();

  /** Reads every PID now; returns the summed RSS of those alive. */
  sample(pids: number[]): number {
    let rss = 0;
    for (const pid of pids) {
      const reading = readProcess(pid);
      if (!reading) continue;
      if (!this.first.has(pid)) this.first.set(pid, reading.cpuSeconds);
      this.last.set(pid, reading.cpuSeconds);
      rss += reading.rssBytes;
    }
    return rss;
  }

  /** CPU seconds used since each process was first sampled. */
  get cpuSeconds(): number {
    let total = 0;
    for (const [pid, cpu] of this.last) total += cpu - (this.first.get(pid) ?? cpu);
    return total;
  }
}
