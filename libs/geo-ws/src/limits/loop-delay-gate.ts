import { Logger } from '@nestjs/common';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** How often the event loop's delay is judged: the longest delay of each such window counts. */
export const LOOP_DELAY_WINDOW_MS = 500;
/** Resolution of the delay histogram: delays shorter than this are not seen. */
const RESOLUTION_MS = 10;

/**
 * Load shedding for arrivals (`limits.maxEventLoopDelayMs`). This is the gate that
 * Fastify's under-pressure plugin puts in front of requests. A herd of new connections
 * (a region's clients failing over here) costs tokens to verify, state to read, rooms to
 * join and history to replay. Admitted without a bound, it slows this instance's own
 * clients. While the event loop's longest delay in the last {@link LOOP_DELAY_WINDOW_MS}
 * exceeds the limit, new upgrades are refused with 503, and clients retry after a backoff
 * or go to another region. Connections already open are never touched.
 */
export class LoopDelayGate {
  private readonly logger = new Logger('GeoWsServer');
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The longest delay of the last window that exceeded the limit (ms); 0 while under it. */
  private overloadedMs = 0;
  /** Upgrades refused since the gate last closed, for the line that says it opened again. */
  private refusedSince = 0;

  constructor(
    /** 0: the gate is off. */
    private readonly maxDelayMs: number,
    private readonly windowMs = LOOP_DELAY_WINDOW_MS,
  ) {}

  start(): void {
    if (this.maxDelayMs === 0 || this.timer) return;
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.histogram.enable();
    this.timer = setInterval(() => this.judge(), this.windowMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.histogram?.disable();
    this.histogram = undefined;
    this.overloadedMs = 0;
  }

  /**
   * Why a new connection is refused right now, or undefined when it may come in. The
   * caller counts it as refused.
   */
  refusal(): string | undefined {
    if (this.overloadedMs === 0) return undefined;
    this.refusedSince++;
    return `this server is overloaded (event loop delay ${this.overloadedMs} ms, limit ${this.maxDelayMs} ms); retry shortly or try another region`;
  }

  /** Ends a window: closes the gate if its longest delay exceeded the limit, opens it otherwise. */
  private judge(): void {
    const histogram = this.histogram!;
    const delayMs = Math.round(histogram.max / 1e6);
    histogram.reset();
    if (delayMs > this.maxDelayMs) {
      if (this.overloadedMs === 0) {
        this.logger.warn(
          `event loop delay ${delayMs} ms exceeds limits.maxEventLoopDelayMs (${this.maxDelayMs} ms): new connections are refused (503) until it falls`,
        );
        this.refusedSince = 0;
      }
      this.overloadedMs = delayMs;
    } else if (this.overloadedMs > 0) {
      this.overloadedMs = 0;
      this.logger.log(`event loop delay back to ${delayMs} ms: accepting new connections again (${this.refusedSince} refused meanwhile)`);
    }
  }
}
