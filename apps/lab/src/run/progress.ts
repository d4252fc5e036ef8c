import type { ProgressSample } from '../load/load.types.js';
import { progressLine } from '../report/terminal.js';

/** Non-terminal output (CI logs) gets a progress line this often instead of one rewritten in place. */
const PLAIN_EVERY_MS = 5000;

/**
 * The live status: on a terminal one line rewritten in place each second (connected,
 * reconnecting, published, acked, deliveries per second); elsewhere a line every 5 s.
 * Phases and faults are printed on their own lines.
 */
export class Progress {
  private impl = '';
  private phaseName = '';
  private phaseStarted = Date.now();
  private last: { at: number; delivered: number } | undefined;
  private lastPlain = 0;
  private lineOpen = false;

  constructor(
    private readonly quiet: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  phase(impl: string, name: string): void {
    this.impl = impl;
    this.phaseName = name;
    this.phaseStarted = Date.now();
    this.line(`[${impl}] ${name}`);
  }

  note(text: string): void {
    this.line(`[${this.impl}]   ${text}`);
  }

  tick(sample: ProgressSample): void {
    const now = Date.now();
    const rate = this.last ? ((sample.delivered - this.last.delivered) * 1000) / Math.max(1, now - this.last.at) : 0;
    this.last = { at: now, delivered: sample.delivered };
    if (this.quiet) return;
    const status = progressLine({
      ...sample,
      impl: this.impl,
      phase: this.phaseName,
      elapsedMs: now - this.phaseStarted,
      deliveredPerSec: Math.round(rate),
    });
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[K${status}`);
      this.lineOpen = true;
    } else if (now - this.lastPlain >= PLAIN_EVERY_MS) {
      this.lastPlain = now;
      this.out.write(`${status}\n`);
    }
  }

  private line(text: string): void {
    if (this.quiet) return;
    if (this.lineOpen) this.out.write('\r\x1b[K');
    this.lineOpen = false;
    this.out.write(`${text}\n`);
  }
}
