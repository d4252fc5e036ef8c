import { Manager, type Socket } from 'socket.io-client';
import type WebSocket from 'ws';
import {
  ACK_TIMEOUT_MS,
  MAX_PUBLISH_ATTEMPTS,
  numberOf,
  reason,
  type ClientOptions,
  type LoadClient,
  type PublishAck,
} from './load-client.js';

/** Failed reconnect attempts on one target before the next target. */
const FAILOVER_AFTER = 3;
const JOIN_TIMEOUT_MS = 5000;

interface MessageFrame {
  room?: unknown;
  text?: unknown;
}

/**
 * socket.io-client as an app would use it: WebSocket transport, its own reconnection
 * (connection-state recovery is the server's), and on repeated failure the next target.
 * The Manager's URI is switched before a reconnect attempt, so the same Socket (with its
 * recovery id and offset) goes on against the next region.
 */
export class SocketIoLoadClient implements LoadClient {
  private readonly manager: Manager;
  private readonly socket: Socket;
  private targetIndex = 0;
  private connectedRegion: string;
  private isUp = false;
  private started = false;
  private closed = false;
  private pauseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ClientOptions) {
    const { plan } = options;
    this.connectedRegion = plan.home;
    this.manager = new Manager(plan.targets[0].wsUrl, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      timeout: 10_000,
      autoConnect: false,
    });
    this.socket = this.manager.socket('/', { auth: { id: plan.id } });
    this.manager.on('error', () => undefined);
    this.manager.on('reconnect_attempt', (attempt) => {
      // Attempts 1..3 on the current target, then the next, and so on round the list.
      if (attempt > 1 && (attempt - 1) % FAILOVER_AFTER === 0) this.useTarget((this.targetIndex + 1) % plan.targets.length);
    });
    this.socket.on('disconnect', () => {
      if (this.isUp) {
        this.isUp = false;
        this.options.sink.down();
      }
    });
    this.socket.on('connect_error', (error) => this.options.sink.error(`connect: ${reason(error)}`));
    this.socket.on('message', (frame: MessageFrame) => {
      if (typeof frame.room === 'string') this.options.sink.message(frame.room, numberOf(frame.text), -1);
    });
  }

  get region(): string {
    return this.connectedRegion;
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let lastError = 'no answer';
      // Like the SDK: the first connection retries (and fails over) until this deadline.
      const timer = setTimeout(() => {
        if (this.started) return;
        this.close();
        reject(new Error(`connect timeout (${lastError})`));
      }, 30_000);
      this.socket.on('connect_error', (error) => (lastError = reason(error)));
      this.socket.on('connect', () => {
        this.connectedRegion = this.options.plan.targets[this.targetIndex].region;
        void this.onConnect().then(
          () => {
            if (this.started || this.closed) return;
            this.started = true;
            clearTimeout(timer);
            resolve();
          },
          () => undefined,
        );
      });
      this.socket.connect();
    });
  }

  async publish(room: string, eventId: string, text: string): Promise<PublishAck> {
    for (let attempt = 1; attempt <= MAX_PUBLISH_ATTEMPTS; attempt++) {
      if (this.closed) throw new Error('CLOSED');
      try {
        // The same id on every attempt: a peer with no dedup may deliver it twice, which the checker counts.
        await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('publish', { room, id: eventId, text });
        return {};
      } catch {
        this.options.sink.error('ACK_TIMEOUT');
      }
    }
    throw new Error('TIMEOUT');
  }

  pauseReading(ms: number): void {
    const transport = (this.manager.engine as unknown as { transport?: { ws?: WebSocket } } | undefined)?.transport;
    const ws = transport?.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    clearTimeout(this.pauseTimer);
    ws.pause();
    this.pauseTimer = setTimeout(() => ws.resume(), ms);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.pauseTimer);
    this.socket.disconnect();
    this.manager.removeAllListeners();
  }

  private useTarget(index: number): void {
    this.targetIndex = index;
    // engine.io reads host and port from the Manager's URI at each open.
    (this.manager as unknown as { uri: string }).uri = this.options.plan.targets[index].wsUrl;
  }

  /** Back in every room: recovered by the server, or joined again here. */
  private async onConnect(): Promise<void> {
    if (!this.socket.recovered) {
      const socket = this.socket;
      await Promise.all(
        this.options.plan.rooms.map(async (room) => {
          for (;;) {
            if (!socket.connected || this.closed) throw new Error('disconnected');
            try {
              await socket.timeout(JOIN_TIMEOUT_MS).emitWithAck('join', room);
              return;
            } catch {
              this.options.sink.error('JOIN_TIMEOUT');
            }
          }
        }),
      );
    }
    if (!this.socket.connected || this.isUp) return;
    this.isUp = true;
    if (this.started) this.options.sink.up();
  }
}
