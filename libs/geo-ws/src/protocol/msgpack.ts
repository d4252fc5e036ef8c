import { Packr, Unpackr, type Options } from 'msgpackr';

/**
 * MessagePack as the wire uses it: plain MessagePack any library reads (no msgpackr records
 * or structures), `undefined` as `JSON.stringify` has it (a property left out, `null` in an array), 64-bit
 * integers read as numbers. Inbound bytes pass `guardMsgpack` first, so the decoder only
 * ever sees JSON's types.
 */
// `skipValues` is not yet in msgpackr's types.
const packr = new Packr({ useRecords: false, skipValues: [undefined], encodeUndefinedAsNil: true } as Options);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * A value as MessagePack bytes: a view of msgpackr's buffer that later packs do not write
 * over (they start past it). What JSON would turn into something else (a Date a handler put
 * in an envelope, `toJSON`, NaN, a Map) is turned the same way first, so a room's JSON and
 * MessagePack members get the same event (and no extension type leaves the server).
 */
export function packMsgpack(value: unknown): Buffer {
  return packr.pack(hasOnlyJsonTypes(value) ? value : (JSON.parse(JSON.stringify(value)) as unknown));
}

/**
 * True when MessagePack encodes `value` as JSON would: strings, finite numbers, booleans,
 * null, plain arrays and objects, no `undefined` in arrays. Iterative; past 256 levels (or
 * a cycle) it says no and leaves the value to JSON (the SDK has the same check).
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

/** Bytes already checked by `guardMsgpack`. */
export function unpackMsgpack(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}
