// @geo-ws/client/msgpack: MessagePack frames for the SDK (`new GeoClient({ codec: msgpackCodec })`).
// Needs the optional peer dependency msgpackr: `npm install msgpackr`.
import { Packr, Unpackr, type Options } from 'msgpackr';
import type { GeoCodec } from './codec.js';
import { jsonCodec } from './codec.js';
import { GEO_MSGPACK_SUBPROTOCOL } from './protocol.js';

// Plain MessagePack that any library reads (no msgpackr records), `undefined` as JSON has it
// (`skipValues` is not yet in msgpackr's types).
const packr = new Packr({ useRecords: false, skipValues: [undefined], encodeUndefinedAsNil: true } as Options);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * Wire protocol v1 as MessagePack binary frames (subprotocol `geo-ws.v1.msgpack`): the same
 * frames and envelope as JSON, smaller and cheaper to parse. What JSON would turn into
 * something else (a Date into its ISO string, `toJSON`, NaN into null, a Map into `{}`) is
 * turned the same way first, so every member of a room sees the same event whatever its
 * codec (the server refuses MessagePack extension types, Date's timestamp included).
 */
export const msgpackCodec: GeoCodec = {
  subprotocol: GEO_MSGPACK_SUBPROTOCOL,
  binary: true,
  encode: (frame) => packr.pack(hasOnlyJsonTypes(frame) ? frame : (JSON.parse(JSON.stringify(frame)) as unknown)),
  decode: (data) => {
    if (typeof data === 'string') return jsonCodec.decode(data);
    if (data instanceof ArrayBuffer) return unpackr.unpack(new Uint8Array(data)) as unknown;
    if (ArrayBuffer.isView(data)) return unpackr.unpack(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) as unknown;
    throw new TypeError(`not a MessagePack frame: ${Object.prototype.toString.call(data)}`);
  },
};

/**
 * True when MessagePack encodes `value` as JSON would: strings, finite numbers, booleans,
 * null, plain arrays and plain objects, without `undefined` in arrays. Iterative, and it
 * stops at a depth the server would refuse anyway (or a cycle), leaving the error to JSON.
 */
function hasOnlyJsonTypes(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node === 'string' || typeof node === 'boolean') continue;
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) return false;
      continue;
    }
    if (typeof node !== 'object' || depth > 256) return false;
    if (Array.isArray(node)) {
      for (const item of node as unknown[]) {
        if (item === undefined) return false;
        stack.push([item, depth + 1]);
      }
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(node);
    if ((proto !== Object.prototype && proto !== null) || 'toJSON' in node) return false;
    for (const item of Object.values(node)) if (item !== undefined) stack.push([item, depth + 1]);
  }
  return true;
}
