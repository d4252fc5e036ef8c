import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';
import { packMsgpack } from '../protocol/msgpack.js';
import type { GeoWireCodec } from '../protocol/wire.js';

/**
 * A server frame built once: a room event goes to every local member of a codec as the same
 * bytes (WebSocket header + payload), instead of each `send` encoding and framing it again.
 * Socket.IO's engine.io does the same for broadcasts (`wsPreEncodedFrame`).
 */
export interface WireFrame {
  /** The payload (UTF-8 JSON, or MessagePack), for sockets that must go through `ws.send` (an extension is negotiated). */
  readonly payload: Buffer;
  /** A binary frame (MessagePack) rather than a text frame (JSON). */
  readonly binary: boolean;
  /** Header and payload in one buffer: one `write` per member. */
  readonly bytes: Buffer;
}

/** `ws` exports its frame builder (as a named export of its ESM entry) but `@types/ws` does not declare it. */
interface FrameBuilder {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}
const { Sender } = wsModule as unknown as { Sender: FrameBuilder };

const TEXT_OPCODE = 1;
const BINARY_OPCODE = 2;

export function encodeTextFrame(text: string): WireFrame {
  return frameOf(Buffer.from(text), false);
}

/** A value as one frame of a codec: JSON text, or MessagePack binary. */
export function encodeFrame(value: unknown, codec: GeoWireCodec): WireFrame {
  return codec === 'msgpack' ? frameOf(packMsgpack(value), true) : encodeTextFrame(JSON.stringify(value));
}

function frameOf(payload: Buffer, binary: boolean): WireFrame {
  const parts = Sender.frame(payload, {
    fin: true,
    opcode: binary ? BINARY_OPCODE : TEXT_OPCODE,
    mask: false, // server frames are never masked (RFC 6455 5.1)
    readOnly: false,
    rsv1: false,
  });
  return { payload, binary, bytes: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
}

/**
 * One room event goes to every local member of its feed, one member after another: its
 * frame is built for the first member of each codec and reused by the rest (the last
 * event's frames, not a map: nothing for the garbage collector to trace, and a feed's
 * members come in a row). A room with JSON and MessagePack members costs two encodes per
 * event, whatever its size.
 */
export class LastFrame {
  private event: object | undefined;
  private json: WireFrame | undefined;
  private msgpack: WireFrame | undefined;

  constructor(
    private readonly toWire: (event: object) => object,
    private readonly encode: (value: unknown, codec: GeoWireCodec) => WireFrame = encodeFrame,
  ) {}

  of(event: object, codec: GeoWireCodec): WireFrame {
    if (this.event !== event) {
      this.event = event;
      this.json = this.msgpack = undefined;
    }
    if (codec === 'msgpack') return (this.msgpack ??= this.encode(this.toWire(event), codec));
    return (this.json ??= this.encode(this.toWire(event), codec));
  }
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
    if (!this.tcp) return this.socket.send(frame.payload, { binary: frame.binary });
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
