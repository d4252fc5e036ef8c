import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { FORBIDDEN_KEY } from './forbidden-key.js';

/** The forbidden key's bytes, to compare map keys with before anything is decoded. */
const FORBIDDEN_KEY_BYTES = new TextEncoder().encode(FORBIDDEN_KEY);

/**
 * Reads a MessagePack frame's structure before it is decoded, in one pass over its bytes
 * and without recursion: what the JSON path gets from `JSON.parse` (which knows no more
 * than JSON's types) and its depth check, MessagePack must get here, because a decoder
 * recurses (a depth bomb overflows its stack), trusts length prefixes, and turns extension
 * types into Dates, Errors or RegExps. Only JSON's types pass: nil, booleans, numbers,
 * strings, arrays, and maps whose keys are strings, with `data` nested at most `maxDepth`
 * levels as in JSON (the frame's own map is one level more), each length within the bytes
 * that remain, and nothing after the value. Throws `MALFORMED_FRAME` with what is wrong.
 * Also says whether a map has the key `__proto__`, which the decoder would rename (see
 * {@link FORBIDDEN_KEY}): the caller refuses the frame once it can name its `event_id`.
 */
export function guardMsgpack(bytes: Uint8Array, maxDepth: number): { hasForbiddenKey: boolean } {
  const maxLevels = maxDepth + 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  /** Values still to read in each open container (a map counts keys and values). */
  const open: number[] = [];
  /** Whether each open container is a map: in a map, a value read at an even remaining count is a key. */
  const maps: boolean[] = [];
  let position = 0;
  let values = 1;
  let hasForbiddenKey = false;

  const need = (count: number, what: string): void => {
    if (count > end - position) malformed(`${what} runs past the end of the frame`);
  };
  const readLength = (size: 1 | 2 | 4): number => {
    need(size, 'a length prefix');
    const length = size === 1 ? view.getUint8(position) : size === 2 ? view.getUint16(position) : view.getUint32(position);
    position += size;
    return length;
  };

  while (values > 0 || open.length > 0) {
    if (values === 0) {
      values = open.pop()!;
      maps.pop();
      continue;
    }
    const inMap = maps.length > 0 && maps[maps.length - 1];
    const atKey = inMap && values % 2 === 0;
    values--;
    need(1, 'a value');
    const type = bytes[position++];
    let strLength = -1;
    let container = -1;
    let isMap = false;
    if (type <= 0x7f || type >= 0xe0) {
      // positive or negative fixint
    } else if (type <= 0x8f) {
      container = (type & 0x0f) * 2;
      isMap = true;
    } else if (type <= 0x9f) container = type & 0x0f;
    else if (type <= 0xbf) strLength = type & 0x1f;
    else {
      switch (type) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xca: // float 32
          position += 4;
          break;
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          position += 8;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          position += 1;
          break;
        case 0xcd:
        case 0xd1:
          position += 2;
          break;
        case 0xce:
        case 0xd2:
          position += 4;
          break;
        case 0xd9:
          strLength = readLength(1);
          break;
        case 0xda:
          strLength = readLength(2);
          break;
        case 0xdb:
          strLength = readLength(4);
          break;
        case 0xdc:
          container = readLength(2);
          break;
        case 0xdd:
          container = readLength(4);
          break;
        case 0xde:
          container = readLength(2) * 2;
          isMap = true;
          break;
        case 0xdf:
          container = readLength(4) * 2;
          isMap = true;
          break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
          return malformed('binary (bin) values are not accepted: send strings, as in JSON');
        case 0xc1:
          return malformed('0xc1 is never used in MessagePack');
        default: // 0xc7-0xc9, 0xd4-0xd8: extension types (timestamps included)
          return malformed('extension types are not accepted (timestamps are ISO strings, as in JSON)');
      }
      if (position > end) malformed('a number runs past the end of the frame');
    }
    if (atKey && strLength < 0) malformed('map keys must be strings, as in JSON');
    if (strLength >= 0) {
      need(strLength, 'a string');
      if (atKey && isForbiddenKey(bytes, position, strLength)) hasForbiddenKey = true;
      position += strLength;
    } else if (container >= 0) {
      if (open.length + 1 > maxLevels) malformed(`frame.data nests arrays or maps deeper than ${maxDepth} levels`);
      // Every element takes at least one byte: a count past the bytes left is a lie.
      need(container, 'an array or map');
      open.push(values);
      maps.push(isMap);
      values = container;
    }
  }
  if (position !== end) malformed(`${end - position} bytes follow the frame's value`);
  return { hasForbiddenKey };
}

function isForbiddenKey(bytes: Uint8Array, at: number, length: number): boolean {
  if (length !== FORBIDDEN_KEY_BYTES.length) return false;
  for (let i = 0; i < length; i++) if (bytes[at + i] !== FORBIDDEN_KEY_BYTES[i]) return false;
  return true;
}

function malformed(reason: string): never {
  throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, `MessagePack frame: ${reason}`);
}
