import WebSocket from 'ws';
import {
  ACK_TIMEOUT_MS,
  MAX_PUBLISH_ATTEMPTS,
  numberOf,
  reason,
  reconnectDelay,
  type ClientOptions,
  type LoadClient,
  type PublishAck,
} from './load-client.js';

interface Pending {
  wire: string;
  attempts: number;
  timer?: NodeJS.Timeout;
  resolve(ack: PublishAck): void;
  reject(error: Error): void;
}

interface ServerFrame {
  t?: unknown;
  room?: unknown;
  id?: unknown;
  text?: unknown;
}

/**
 * A bare `ws` client of the ceiling peer: on close it goes to the next target after a
 * short backoff and joins its rooms again; nothing is resumed. Publishes wait for their
 * ack and are sent again (same id) after a timeout or on the next connection.
 */
export class CeilingLoadClient implements LoadClient {
  private socket: WebSocket | undefined;
  private targetIndex = 0;
  private connectedRegion: string;
  private failures = 0;
  private isUp = false;
  private started = false;
  private closed = false;
  private readonly joined = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pauseTimer: NodeJS.Timeout | undefined;
  private first: { resolve(): void } | undefined;
  private lastError = 'no answer';

  constructor(private readonly options: ClientOptions) {
    this.connectedRegion = options.plan.home;
  }

  get region(): string {
    return this.connectedRegion;
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Like the SDK: the first connection retries (next target each time) until this deadline.
      const timer = setTimeout(() => {
        this.first = undefined;
        this.close();
        reject(new Error(`connect timeout (${this.lastError})`));
      }, 30_000);
      this.first = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.open();
    });
  }

  publish(room: string, eventId: string, text: string): Promise<PublishAck> {
    if (this.closed) return Promise.reject(new Error('CLOSED'));
    if (this.pending.has(eventId)) return Promise.reject(new Error('DUPLICATE_ID'));
    return new Promise<PublishAck>((resolve, reject) => {
      const pending: Pending = { wire: JSON.stringify({ t: 'pub', room, id: eventId, text }), attempts: 0, resolve, reject };
      this.pending.set(eventId, pending);
      if (this.isUp) this.send(eventId, pending);
    });
  }

  pauseReading(ms: number): void {
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return;
    clearTimeout(this.pauseTimer);
    socket.pause();
    this.pauseTimer = setTimeout(() => socket.resume(), ms);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pauseTimer);
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error('CLOSED'));
      this.pending.delete(id);
    }
    const socket = this.socket;
    this.socket = undefined;
    socket?.terminate();
  }

  private open(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const target = this.options.plan.targets[this.targetIndex];
    const url = `${target.wsUrl}?id=${encodeURIComponent(this.options.plan.id)}`;
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    this.socket = socket;
    this.joined.clear();
    socket.on('error', (error) => {
      this.lastError = reason(error);
      this.options.sink.error(this.lastError);
    });
    socket.on('open', () => {
      this.connectedRegion = target.region;
      for (const room of this.options.plan.rooms) socket.send(JSON.stringify({ t: 'join', room }));
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary || !Buffer.isBuffer(data)) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(data.toString()) as ServerFrame;
      } catch {
        return;
      }
      if (frame.t === 'msg') {
        if (typeof frame.room === 'string') this.options.sink.message(frame.room, numberOf(frame.text), -1);
      } else if (frame.t === 'ack') {
        if (typeof frame.id === 'string') this.onAck(frame.id);
      } else if (frame.t === 'joined' && typeof frame.room === 'string') {
        this.joined.add(frame.room);
        if (!this.isUp && this.options.plan.rooms.every((room) => this.joined.has(room))) this.onUp();
      }
    });
    socket.on('close', (code) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.closed) return;
      this.options.sink.error(`close-${code}`);
      for (const pending of this.pending.values()) clearTimeout(pending.timer);
      if (this.isUp) {
        this.isUp = false;
        this.options.sink.down();
        this.failures = 0;
      }
      // The next target after a short backoff; nothing is resumed, rooms are joined again.
      this.targetIndex = (this.targetIndex + 1) % this.options.plan.targets.length;
      this.reconnectTimer = setTimeout(() => this.open(), reconnectDelay(this.failures++));
    });
  }

  private onUp(): void {
    this.isUp = true;
    this.failures = 0;
    if (!this.started) {
      this.started = true;
      const first = this.first;
      this.first = undefined;
      first?.resolve();
    } else this.options.sink.up();
    // What was never acknowledged goes again on this connection (it may be delivered twice).
    for (const [id, pending] of this.pending) this.send(id, pending);
  }

  private send(id: string, pending: Pending): void {
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return;
    if (++pending.attempts > MAX_PUBLISH_ATTEMPTS) {
      this.pending.delete(id);
      pending.reject(new Error('TIMEOUT'));
      return;
    }
    socket.send(pending.wire);
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      this.options.sink.error('ACK_TIMEOUT');
      this.send(id, pending);
    }, ACK_TIMEOUT_MS);
  }

  private onAck(id: string): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve({});
  }
}
