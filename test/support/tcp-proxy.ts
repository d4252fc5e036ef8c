import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A user-space TCP link between two loopback endpoints, for fault and latency tests
 * (this kernel has no netem): it can add a one-way delay per direction, and be cut
 * (every connection reset, new ones refused) and restored.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private isCut = false;
  private isSilent = false;
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    private delayMs = 0,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Resets every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.isCut = false;
    this.isSilent = false;
  }

  /** Keeps every connection open but forwards nothing: a peer that vanished without a goodbye. */
  blackhole(): void {
    this.isSilent = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    if (this.isCut) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Forwards chunks `delayMs` late, strictly in order even when the delay changes. */
  private pipe(from: Socket, to: Socket): void {
    const queue: { chunk: Buffer; dueAt: number }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      while (queue.length > 0 && queue[0].dueAt <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0].dueAt - Date.now());
    };
    from.on('data', (chunk: Buffer) => {
      if (this.isSilent) return;
      if (this.delayMs <= 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      queue.push({ chunk, dueAt: Math.max(Date.now() + this.delayMs, queue.at(-1)?.dueAt ?? 0) });
      timer ??= setTimeout(flush, Math.max(0, queue[0].dueAt - Date.now()));
    });
    from.on('close', () => clearTimeout(timer));
  }
}
