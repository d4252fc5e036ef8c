// Test support for the client's unit specs; not part of the package (excluded from its build).
import type { WebSocketConstructor, WebSocketLike } from '../protocol.js';

/**
 * A WebSocket in memory, as browsers have it (no `terminate()`, no HTTP status): the test
 * plays the server, frame by frame, so the client can run on jest's fake clock.
 */
export class MemorySocket implements WebSocketLike {
  readyState = 0;
  binaryType?: string;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  /** Every frame the client sent, decoded. */
  readonly sent: { event: string; data: any }[] = [];
  /** The code of the client's `close()`, if it called it. */
  closedWith: number | undefined;

  constructor(
    readonly url: URL,
    readonly protocols: string[] | undefined,
  ) {}

  send(data: string | Uint8Array): void {
    this.sent.push(JSON.parse(data as string) as { event: string; data: unknown });
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 2;
  }

  /** The upgrade succeeded. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The server sends a frame. */
  receive(event: string, data: unknown): void {
    this.onmessage?.({ data: JSON.stringify({ event, data }) });
  }

  /** The server sends `geo.welcome` (after opening the socket if it is not open). */
  welcome(fields: Record<string, unknown> = {}): void {
    if (this.readyState === 0) this.open();
    this.receive('geo.welcome', { connection_id: 'c1', region: 'eu', sender: 'tester', ...fields });
  }

  /** The connection ends with `code` (1006: lost). */
  end(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }

  /** The frames the client sent named `event`. */
  frames(event: string): any[] {
    return this.sent.filter((frame) => frame.event === event).map((frame) => frame.data);
  }
}

/** A WebSocket class whose sockets are {@link MemorySocket}s, collected in `sockets` in creation order. */
export function memorySockets(): { Socket: WebSocketConstructor; sockets: MemorySocket[]; last: () => MemorySocket } {
  const sockets: MemorySocket[] = [];
  class Socket extends MemorySocket {
    constructor(url: string, protocols?: string | string[]) {
      super(new URL(url), typeof protocols === 'string' ? [protocols] : protocols);
      sockets.push(this);
    }
  }
  return { Socket, sockets, last: () => sockets[sockets.length - 1] };
}
