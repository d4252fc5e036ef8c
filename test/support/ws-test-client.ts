import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { GeoEnvelope } from '@geo-ws/nest';
import { waitFor } from '@geo-ws/nest/testing';

export interface ReceivedFrame {
  event: string;
  data: any;
}

/**
 * A raw protocol client for e2e tests: speaks wire protocol v1 by hand (no SDK), records
 * every frame, and waits for the ones a test expects.
 */
export class WsTestClient {
  readonly frames: ReceivedFrame[] = [];
  closeCode: number | undefined;
  closeReason: string | undefined;
  /** When the close was seen (epoch ms). */
  closedAt: number | undefined;
  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (raw: Buffer) => this.frames.push(JSON.parse(raw.toString())));
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.closedAt = Date.now();
    });
  }

  static async connect(
    url: string,
    options: { name?: string; token?: string; headers?: Record<string, string>; autoPong?: boolean } = {},
  ): Promise<WsTestClient> {
    const target = options.name ? `${url}?name=${encodeURIComponent(options.name)}` : url;
    const headers = { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
    const socket = new WebSocket(target, { headers, autoPong: options.autoPong ?? true });
    const client = new WsTestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    });
    await client.next('geo.welcome');
    return client;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(event: string, data: unknown): void {
    this.socket.send(JSON.stringify({ event, data }));
  }

  sendRaw(raw: string | Buffer, binary = false): void {
    this.socket.send(raw, { binary });
  }

  /** The first frame with this event (and matching `where`) not already consumed by `next`. */
  async next(event: string, where: (data: any) => boolean = () => true, timeoutMs = 5000): Promise<any> {
    let found: ReceivedFrame | undefined;
    await waitFor(
      () => (found = this.frames.find((frame) => frame.event === event && !consumed.has(frame) && where(frame.data))) !== undefined,
      `frame ${event}`,
      timeoutMs,
    ).catch((error: unknown) => {
      const recent = this.frames.filter((frame) => frame.event.startsWith('geo.')).slice(-8);
      throw new Error(`${(error as Error).message}; last protocol frames: ${JSON.stringify(recent)}`);
    });
    consumed.add(found!);
    return found!.data;
  }

  async join(
    room: string,
    position: { since?: number; epoch?: string } = {},
  ): Promise<{ room: string; seq: number; epoch: string; recovered: boolean }> {
    this.send('geo.join', { room, ...position });
    return this.next('geo.joined', (data) => data.room === room && !data.scope);
  }

  /** Publishes and resolves with the `geo.ack` or `geo.error` for this event_id. */
  async publish(
    event: string,
    room: string,
    data: unknown,
    eventId: string = randomUUID(),
  ): Promise<{ event_id: string; seq?: number | null; duplicate?: boolean; code?: string; message?: string }> {
    this.send(event, { event_id: eventId, room_id: room, data });
    let answer: ReceivedFrame | undefined;
    await waitFor(
      () =>
        (answer = this.frames.find(
          (frame) => (frame.event === 'geo.ack' || frame.event === 'geo.error') && frame.data.event_id === eventId && !consumed.has(frame),
        )) !== undefined,
      `ack or error for ${eventId}`,
    );
    consumed.add(answer!);
    return answer!.data;
  }

  /**
   * Publishes until acked, resending the same event_id after retryable errors (what the
   * SDK's outbox does): `{ eventId, seq }` of the stored event.
   */
  async publishUntilAcked(event: string, room: string, data: unknown, retryEveryMs = 150): Promise<{ eventId: string; seq: number }> {
    const eventId = randomUUID();
    for (let attempt = 0; attempt < 150; attempt++) {
      const answer = await this.publish(event, room, data, eventId).catch(() => undefined);
      if (answer && typeof answer.seq === 'number') return { eventId, seq: answer.seq };
      if (answer?.code && !['UNAVAILABLE', 'INTERNAL', 'RATE_LIMITED'].includes(answer.code))
        throw new Error(`refused: ${answer.code} ${answer.message}`);
      await new Promise((resolve) => setTimeout(resolve, retryEveryMs));
    }
    throw new Error(`no ack for ${eventId}`);
  }

  /** Logged envelopes of `room` received so far (events with a seq), in arrival order. */
  events(room: string, type?: string): GeoEnvelope[] {
    return this.frames
      .filter((frame) => !frame.event.startsWith('geo.') && frame.data?.room_id === room && (type === undefined || frame.event === type))
      .map((frame) => frame.data as GeoEnvelope);
  }

  errors(): { code: string; message: string; event_id?: string }[] {
    return this.frames.filter((frame) => frame.event === 'geo.error').map((frame) => frame.data);
  }

  async waitForEvents(room: string, count: number, timeoutMs = 10_000): Promise<GeoEnvelope[]> {
    await waitFor(() => this.events(room).length >= count, `${count} events in ${room} (have ${this.events(room).length})`, timeoutMs);
    return this.events(room);
  }

  async waitForClose(timeoutMs = 5000): Promise<number> {
    await waitFor(() => this.closeCode !== undefined, 'the connection to close', timeoutMs);
    return this.closeCode!;
  }

  close(): void {
    this.socket.close();
  }
}

const consumed = new WeakSet<ReceivedFrame>();
