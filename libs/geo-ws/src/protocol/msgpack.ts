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

/** A value as MessagePack bytes: a view of msgpackr's buffer that later packs do not write over (they start past it). */
export function packMsgpack(value: unknown): Buffer {
  return packr.pack(value);
}

/** Bytes already checked by `guardMsgpack`. */
export function unpackMsgpack(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}
