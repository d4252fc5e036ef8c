import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LinkProxyOptions {
  /** Address the proxy listens on (the caller's side of the link). Default 127.0.0.1. */
  listenHost?: string;
  /** Source address of upstream connections (e.g. 10.77.<j>.3, so nft in region j can drop them). */
  localAddress?: string;
  /** Uniform extra delay per chunk in [0, jitterMs]; never reorders. */
  jitterMs?: number;
  /** For logs and errors. */
  name?: string;
}

export interface LinkProxyStats {
  /** Connections accepted and forwarded since start. */
  connections: number;
  /** Connections open now (client side). */
  open: number;
  /** Connections refused or reset because the link was cut. */
  refused: number;
  /** Bytes forwarded caller → upstream and upstream → caller. */
  bytesUp: number;
  bytesDown: number;
}

/** Above this many queued bytes per direction the sender is paused (TCP backpressure instead of unbounded memory). */
const MAX_QUEUED_BYTES = 1 << 20;

interface Direction {
  from: Socket;
  to: Socket;
  queue: { chunk: Buffer; dueAt: number }[];
  queuedBytes: number;
  timer: NodeJS.Timeout | undefined;
  /** The receiver's buffer is full: wait for 'drain'. */
  blocked: boolean;
  up: boolean;
}

/**
 * A user-space TCP link (this kernel has no netem): per direction a FIFO that holds each
 * chunk for a one-way delay plus uniform jitter and never reorders. It can be cut (every
 * connection reset, new ones refused), stalled (connections stay open, nothing is
 * forwarded: a black hole, the senders' TCP buffers fill up; a side that closes meanwhile
 * is not told to the other side until the heal, after what it sent before) and healed.
 */
export class LinkProxy {
  private readonly sockets = new Set<Socket>();
  private readonly directions = new Set<Direction>();
  /** Closes that happened while stalled: the other side learns of them only on `heal()` (a black hole carries no FIN or RST). */
  private readonly heldCloses = new Set<() => void>();
  private server: Server | undefined;
  private isCut = false;
  private isStalled = false;
  private jitterMs: number;
  private readonly counters: LinkProxyStats = { connections: 0, open: 0, refused: 0, bytesUp: 0, bytesDown: 0 };
  port = 0;

  constructor(
    readonly target: { host: string; port: number },
    private delayMs = 0,
    private readonly options: LinkProxyOptions = {},
  ) {
    this.jitterMs = options.jitterMs ?? 0;
  }

  get host(): string {
    return this.options.listenHost ?? '127.0.0.1';
  }

  get name(): string {
    return this.options.name ?? `${this.host}→${this.target.host}:${this.target.port}`;
  }

  /** `nats://host:port` of the listening side (what the NATS tests connect to). */
  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get cutOff(): boolean {
    return this.isCut;
  }

  get stalled(): boolean {
    return this.isStalled;
  }

  stats(): LinkProxyStats {
    return { ...this.counters };
  }

  async start(port = 0): Promise<this> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    // A listener error after start (EMFILE on accept) must not crash the lab.
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as { port: number }).port;
    return this;
  }

  setDelay(ms: number, jitterMs?: number): void {
    this.delayMs = ms;
    if (jitterMs !== undefined) this.jitterMs = jitterMs;
  }

  /** Resets every open connection and refuses new ones until `heal()`. */
  cut(): void {
    this.isCut = true;
    this.heldCloses.clear();
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  /** Keeps every connection open but forwards nothing (queued chunks wait) until `heal()`. */
  stall(): void {
    this.isStalled = true;
    for (const direction of this.directions) {
      direction.from.pause();
      clearTimeout(direction.timer);
      direction.timer = undefined;
    }
  }

  /** Undoes `cut()` and `stall()`: held chunks go out in order (late), senders resume, held closes follow them. */
  heal(): void {
    this.isCut = false;
    if (!this.isStalled) return;
    this.isStalled = false;
    for (const direction of this.directions) {
      this.schedule(direction);
      this.resumeIfRoom(direction);
    }
    const closes = [...this.heldCloses];
    this.heldCloses.clear();
    for (const close of closes) close();
  }

  /** Former `TcpProxy` names, kept for the tests that use them. */
  restore(): void {
    this.heal();
  }

  blackhole(): void {
    this.stall();
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.isCut) {
      this.counters.refused++;
      client.resetAndDestroy();
      return;
    }
    this.counters.connections++;
    this.counters.open++;
    client.setNoDelay(true);
    const upstream = connect({ host: this.target.host, port: this.target.port, localAddress: this.options.localAddress, noDelay: true });
    upstream.on('error', () => undefined);
    const up = this.direction(client, upstream, true);
    const down = this.direction(upstream, client, false);
    let closed = false;
    const closeBoth = (): void => {
      for (const direction of [up, down]) {
        clearTimeout(direction.timer);
        direction.queue.length = 0;
        direction.queuedBytes = 0;
        this.directions.delete(direction);
      }
      // One side closed: the other goes too (with RST when it was an error, like a real peer would see).
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        if (closed) return;
        closed = true;
        this.counters.open--;
        if (!this.isStalled) return closeBoth();
        // Stalled: the other side hears nothing until the heal, and then first what was sent before the close.
        const toOther = socket === client ? up : down;
        const held = (): void => {
          if (toOther.queue.length > 0 && !toOther.to.destroyed) {
            setTimeout(held, 5);
            return;
          }
          closeBoth();
        };
        this.heldCloses.add(held);
      });
    }
    // Half-close: pass the FIN on once everything queued before it has been delivered.
    for (const direction of [up, down]) {
      direction.from.on('end', () => {
        const finish = (): void => {
          if (direction.queue.length > 0) {
            setTimeout(finish, 5);
            return;
          }
          if (!direction.to.destroyed) direction.to.end();
        };
        finish();
      });
    }
  }

  private direction(from: Socket, to: Socket, up: boolean): Direction {
    const direction: Direction = { from, to, queue: [], queuedBytes: 0, timer: undefined, blocked: false, up };
    this.directions.add(direction);
    if (this.isStalled) from.pause();
    to.on('drain', () => {
      direction.blocked = false;
      this.resumeIfRoom(direction);
    });
    from.on('data', (chunk: Buffer) => {
      const now = Date.now();
      const delay = this.delayMs + (this.jitterMs > 0 ? Math.random() * this.jitterMs : 0);
      // Never before the chunk ahead of it: jitter and a lowered delay cannot reorder.
      const dueAt = Math.max(now + delay, direction.queue.at(-1)?.dueAt ?? 0);
      direction.queue.push({ chunk, dueAt });
      direction.queuedBytes += chunk.length;
      if (direction.queuedBytes > MAX_QUEUED_BYTES) from.pause();
      if (delay <= 0 && direction.queue.length === 1) this.flush(direction);
      else this.schedule(direction);
    });
    return direction;
  }

  private schedule(direction: Direction): void {
    if (this.isStalled || direction.timer !== undefined || direction.queue.length === 0) return;
    direction.timer = setTimeout(() => this.flush(direction), Math.max(0, direction.queue[0].dueAt - Date.now()));
  }

  private flush(direction: Direction): void {
    direction.timer = undefined;
    if (this.isStalled) return;
    const now = Date.now();
    // Bounded by the queue's length at entry.
    while (direction.queue.length > 0 && direction.queue[0].dueAt <= now) {
      const { chunk } = direction.queue.shift()!;
      direction.queuedBytes -= chunk.length;
      if (direction.up) this.counters.bytesUp += chunk.length;
      else this.counters.bytesDown += chunk.length;
      if (direction.to.destroyed) continue;
      if (!direction.to.write(chunk)) direction.blocked = true;
    }
    this.resumeIfRoom(direction);
    this.schedule(direction);
  }

  private resumeIfRoom(direction: Direction): void {
    if (this.isStalled || direction.blocked || direction.queuedBytes > MAX_QUEUED_BYTES) {
      if (direction.blocked) direction.from.pause();
      return;
    }
    if (direction.from.isPaused()) direction.from.resume();
  }
}
