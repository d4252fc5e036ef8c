import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

/**
 * A server text frame built once: a room event goes to every local member as the same bytes
 * (WebSocket header + UTF-8 payload), instead of each `send` encoding the string and framing
 * it again. Socket.IO's engine.io does the same for broadcasts (`wsPreEncodedFrame`).
 */
export interface WireFrame {
  /** The UTF-8 payload, for sockets that must go through `ws.send` (an extension is negotiated). */
  readonly payload: Buffer;
  /** Header and payload in one buffer: one `write` per member. */
  readonly bytes: Buffer;
}

/** `ws` exports its frame builder (as a named export of its ESM entry) but `@types/ws` does not declare it. */
interface FrameBuilder {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}
const { Sender } = wsModule as unknown as { Sender: FrameBuilder };

const TEXT_OPCODE = 1;

export function encodeTextFrame(text: string): WireFrame {
  const payload = Buffer.from(text);
  const parts = Sender.frame(payload, {
    fin: true,
    opcode: TEXT_OPCODE,
    mask: false, // server frames are never masked (RFC 6455 5.1)
    readOnly: false,
    rsv1: false,
  });
  return { payload, bytes: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
}

/** The parts of a `ws` socket a pre-built frame is written through (untyped in `@types/ws`). */
interface SocketInternals {
  _sender?: object;
  _socket?: Socket;
}

/**
 * Writes pre-built frames to one `ws` socket, and batches them: the first write in a tick
 * corks the TCP socket and one `nextTick` uncorks every socket written in that tick, so
 * the events a tail hands over together leave as one `writev` per member, not one write
 * each.
 *
 * The bytes go to the TCP socket under `ws`, as `ws`'s own sender writes a one-part frame.
 * That may bypass the sender only while it has nothing queued of its own; it queues only to
 * compress (or to read a Blob, which geo-ws never sends). So a socket with a negotiated
 * extension (permessage-deflate) always goes through `ws.send`.
 */
export class FrameWriter {
  /** The TCP socket under `ws`, when frames may be written to it directly. */
  private readonly tcp: Socket | undefined;

  constructor(private readonly socket: WebSocket) {
    const { _sender: sender, _socket: tcp } = socket as unknown as SocketInternals;
    if (socket.extensions === '' && sender && tcp) this.tcp = tcp;
  }

  /**
   * True while this tick's writes are held for one flush: bytes written since are not
   * backlog (the kernel has not been offered them yet), so a buffer limit must not count them.
   */
  get batching(): boolean {
    return this.tcp !== undefined && this.tcp.writableCorked > 0;
  }

  write(frame: WireFrame): void {
    if (!this.tcp) return this.socket.send(frame.payload, { binary: false });
    if (this.tcp.writableCorked === 0) corkUntilNextTick(this.tcp);
    this.tcp.write(frame.bytes);
  }
}

const corked: Socket[] = [];

function corkUntilNextTick(socket: Socket): void {
  socket.cork();
  if (corked.push(socket) === 1) process.nextTick(uncorkAll);
}

function uncorkAll(): void {
  // A socket destroyed meanwhile ignores the uncork.
  for (const socket of corked) socket.uncork();
  corked.length = 0;
}
