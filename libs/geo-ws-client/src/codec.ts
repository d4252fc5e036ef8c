import { GEO_SUBPROTOCOL } from './protocol.js';

/**
 * How frames are encoded on the wire, both ways: the client offers `subprotocol` and the
 * server answers in the same codec. JSON (text frames) is built in; MessagePack (binary
 * frames) is `msgpackCodec` from `@geo-ws/client/msgpack`, an entry point of its own so the
 * core stays free of dependencies.
 */
export interface GeoCodec {
  /** The WebSocket subprotocol that selects this codec on the server (`geo-ws.v1`, `geo-ws.v1.msgpack`). */
  readonly subprotocol: string;
  /** Sends binary frames (the socket's `binaryType` is `'arraybuffer'` either way). */
  readonly binary: boolean;
  /** One frame `{ event, data }`; throws what it cannot encode. `data` has JSON's types or values with `toJSON`. */
  encode(frame: { event: string; data: unknown }): string | Uint8Array;
  /** One received frame: a string, an ArrayBuffer (browsers, undici) or a Uint8Array/Buffer (`ws`). Throws on garbage. */
  decode(data: unknown): unknown;
}

/** Wire protocol v1 as JSON text frames: the default. */
export const jsonCodec: GeoCodec = {
  subprotocol: GEO_SUBPROTOCOL,
  binary: false,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(textOf(data)) as unknown,
};

/** A frame's text: a string, or the bytes of a binary frame (ArrayBuffer, a Buffer, a typed array). */
export function textOf(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}
