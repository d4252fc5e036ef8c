import type { Socket } from 'node:net';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
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
  /** The same frame compressed (permessage-deflate), built for the first deflate member and kept for the others. */
  deflated?: { level: number; bytes: Buffer };
}

/** permessage-deflate as the server applies it: frames from `thresholdBytes` up, at zlib `level`. */
export interface FrameCompression {
  thresholdBytes: number;
  level: number;
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
  return { payload, binary, bytes: header(payload, binary, false) };
}

function header(payload: Buffer, binary: boolean, rsv1: boolean): Buffer {
  const parts = Sender.frame(payload, {
    fin: true,
    opcode: binary ? BINARY_OPCODE : TEXT_OPCODE,
    mask: false, // server frames are never masked (RFC 6455 5.1)
    readOnly: false,
    rsv1, // set: the payload is compressed (RFC 7692 6)
  });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** The tail a sync flush leaves, which RFC 7692 7.2.1 has the sender remove (the receiver puts it back). */
const SYNC_FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * A frame compressed for permessage-deflate without context takeover: each message is
 * deflated on its own, so the bytes are the same for every member that negotiated it, and
 * are built once (not once per member, as `ws.send` would, each with its own zlib stream).
 */
export function deflatedFrame(frame: WireFrame, level: number): Buffer {
  if (frame.deflated?.level !== level) {
    const compressed = deflateRawSync(frame.payload, { level, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const payload = compressed.subarray(-4).equals(SYNC_FLUSH_TAIL) ? compressed.subarray(0, -4) : compressed;
    frame.deflated = { level, bytes: header(payload, frame.binary, true) };
  }
  return frame.deflated.bytes;
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
  _extensions?: Record<string, { params?: Record<string, unknown> } | undefined>;
}

/**
 * Writes pre-built frames to one `ws` socket, and batches them: the first write in a tick
 * corks the TCP socket and one `nextTick` uncorks every socket written in that tick, so
 * the events a tail hands over together leave as one `writev` per member, not one write
 * each.
 *
 * The bytes go to the TCP socket under `ws`, as `ws`'s own sender writes a one-part frame.
 * That may bypass the sender only while it has nothing queued of its own; it queues only to
 * compress (or to read a Blob, which geo-ws never sends). So with permessage-deflate, the
 * server never has `ws` compress (`send(…, { compress: false })`): frames to compress are
 * deflated here, once per event, as every member shares the same parameters (no context
 * takeover, the full window). A socket that negotiated anything else (a smaller window)
 * goes through `ws.send`.
 */
export class FrameWriter {
  /** The TCP socket under `ws`, when frames may be written to it directly. */
  private readonly tcp: Socket | undefined;
  /** Set when the socket negotiated permessage-deflate and frames are compressed here. */
  private readonly compression: FrameCompression | undefined;

  constructor(
    private readonly socket: WebSocket,
    compression?: FrameCompression,
  ) {
    const { _sender: sender, _socket: tcp, _extensions: extensions } = socket as unknown as SocketInternals;
    if (!sender || !tcp) return;
    if (socket.extensions === '') this.tcp = tcp;
    else if (compression && socket.extensions === 'permessage-deflate' && sharesDeflate(extensions?.['permessage-deflate']?.params)) {
      this.tcp = tcp;
      this.compression = compression;
    }
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
    const { compression } = this;
    this.tcp.write(
      compression && frame.payload.length >= compression.thresholdBytes ? deflatedFrame(frame, compression.level) : frame.bytes,
    );
  }
}

/** Negotiated parameters whose compressed bytes are the same for every member: no context takeover, the full window. */
function sharesDeflate(params: Record<string, unknown> | undefined): boolean {
  if (!params?.server_no_context_takeover) return false;
  const bits = params.server_max_window_bits;
  return bits === undefined || bits === true || bits === 15;
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
