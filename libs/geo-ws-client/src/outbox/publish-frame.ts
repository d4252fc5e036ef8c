import { jsonCodec, type GeoCodec } from '../codec.js';
import { GeoClientError } from '../errors.js';

/** What the client checks before a publish leaves it (defaults: the server's defaults). */
export interface PublishLimits {
  /** Largest frame, in UTF-8 bytes (the server's `limits.maxPayloadBytes`). */
  maxFrameBytes: number;
  /** Deepest nesting of the frame's `data` (the server's `limits.maxDepth`). */
  maxDepth: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
export const DEFAULT_MAX_DEPTH = 32;

const EVENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * The object key the server refuses in either codec: MessagePack readers rename it to
 * `__proto_` where JSON keeps it, so members would see different data by codec.
 */
const FORBIDDEN_KEY = '__proto__';
const FORBIDDEN_KEY_REFUSAL = `the payload has an object key "${FORBIDDEN_KEY}", which the server refuses (MessagePack readers rename it); use another key; nothing was sent`;

/**
 * Encodes a publish frame once, for every attempt, or throws a {@link GeoClientError} for
 * what the server would refuse for good anyway, so it never enters the outbox:
 * - `INVALID_ENVELOPE`: a protocol event name (`geo.*`) or a bad `event_id`, or `data`
 *   that has no JSON form (`undefined`, a function);
 * - `MALFORMED_FRAME`: `data` the JSON encoder cannot encode (a cycle, a `BigInt`, nesting
 *   so deep that the encoder runs out of stack), nested deeper than `maxDepth`, or with an
 *   object key `__proto__`;
 * - `PAYLOAD_TOO_LARGE`: a frame larger than `maxFrameBytes`.
 *
 * `event` is `unknown` because `publish()` is called from JavaScript too: it is checked here.
 * With a binary codec (MessagePack) the checks are the same, and the frame is its bytes.
 */
export function encodePublish(
  event: unknown,
  eventId: string,
  room: string,
  data: unknown,
  limits: PublishLimits,
  codec: GeoCodec = jsonCodec,
): string | Uint8Array {
  if (typeof event !== 'string' || event.length === 0 || event.length > 128 || event.startsWith('geo.')) {
    throw new GeoClientError(
      'INVALID_ENVELOPE',
      `"${String(event).slice(0, 140)}" is not an application event name (1-128 characters, not geo.*); nothing was sent`,
    );
  }
  if (typeof eventId !== 'string' || !EVENT_ID.test(eventId)) {
    throw new GeoClientError('INVALID_ENVELOPE', 'event_id must be 1-64 characters of [A-Za-z0-9_-]; nothing was sent');
  }
  if (codec !== jsonCodec) return encodeWith(codec, event, eventId, room, data, limits);
  let payload: string | undefined;
  try {
    payload = stringify(data);
  } catch (error) {
    throw new GeoClientError('MALFORMED_FRAME', `the payload cannot be encoded as JSON (${describeThrown(error)}); nothing was sent`);
  }
  if (payload === undefined)
    throw new GeoClientError('INVALID_ENVELOPE', 'the payload has no JSON form (undefined or a function); nothing was sent');
  // The server measures the depth of the frame's `data`: { event_id, room_id, data } is level 1.
  const shape = jsonShape(payload);
  const depth = 1 + shape.depth;
  if (depth > limits.maxDepth) {
    throw new GeoClientError(
      'MALFORMED_FRAME',
      `the payload nests arrays or objects ${depth - 1} levels deep; at most ${limits.maxDepth - 1} are allowed; nothing was sent`,
    );
  }
  if (shape.forbiddenKey) throw new GeoClientError('MALFORMED_FRAME', FORBIDDEN_KEY_REFUSAL);
  const frame = `{"event":${JSON.stringify(event)},"data":{"event_id":${JSON.stringify(eventId)},"room_id":${JSON.stringify(room)},"data":${payload}}}`;
  const bytes = utf8Length(frame);
  if (bytes > limits.maxFrameBytes) {
    throw new GeoClientError('PAYLOAD_TOO_LARGE', `the frame is ${bytes} bytes; the limit is ${limits.maxFrameBytes}; nothing was sent`);
  }
  return frame;
}

/** A publish frame in another codec than JSON: `data` checked as JSON's is, the size is the bytes'. */
function encodeWith(
  codec: GeoCodec,
  event: string,
  eventId: string,
  room: string,
  data: unknown,
  limits: PublishLimits,
): string | Uint8Array {
  if (data === undefined || typeof data === 'function' || typeof data === 'symbol')
    throw new GeoClientError('INVALID_ENVELOPE', 'the payload has no JSON form (undefined or a function); nothing was sent');
  const shape = valueShape(data, limits.maxDepth);
  const depth = 1 + shape.depth;
  if (depth > limits.maxDepth) {
    throw new GeoClientError(
      'MALFORMED_FRAME',
      `the payload nests arrays or objects more than ${limits.maxDepth - 1} levels deep (or refers to itself); nothing was sent`,
    );
  }
  if (shape.forbiddenKey) throw new GeoClientError('MALFORMED_FRAME', FORBIDDEN_KEY_REFUSAL);
  let frame: string | Uint8Array;
  try {
    frame = codec.encode({ event, data: { event_id: eventId, room_id: room, data } });
  } catch (error) {
    throw new GeoClientError('MALFORMED_FRAME', `the payload cannot be encoded (${describeThrown(error)}); nothing was sent`);
  }
  const bytes = typeof frame === 'string' ? utf8Length(frame) : frame.byteLength;
  if (bytes > limits.maxFrameBytes) {
    throw new GeoClientError('PAYLOAD_TOO_LARGE', `the frame is ${bytes} bytes; the limit is ${limits.maxFrameBytes}; nothing was sent`);
  }
  return frame;
}

/** How a payload is built: its deepest nesting of arrays and objects, and whether an object in it has the key `__proto__`. */
interface PayloadShape {
  /** A scalar is 0, `{}` is 1. */
  depth: number;
  forbiddenKey: boolean;
}

/**
 * The shape of a value, its depth counted up to `limit + 1` and no further (so a cycle ends
 * too). Iterative. Values with `toJSON` (a Date) count as scalars, as their JSON form is.
 */
function valueShape(value: unknown, limit: number): PayloadShape {
  const shape: PayloadShape = { depth: 0, forbiddenKey: false };
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null || 'toJSON' in node) continue;
    shape.depth = Math.max(shape.depth, depth + 1);
    if (shape.depth > limit) return shape;
    if (!Array.isArray(node) && Object.hasOwn(node, FORBIDDEN_KEY)) shape.forbiddenKey = true;
    for (const child of (Array.isArray(node) ? node : Object.values(node)) as unknown[]) stack.push([child, depth + 1]);
  }
  return shape;
}

/** `JSON.stringify`, typed as it behaves: `undefined` for undefined, a function or a symbol (the lib says `string`). */
function stringify(value: unknown): string | undefined {
  return JSON.stringify(value);
}

/** What was thrown, for a message: its `message` if it has one (a `toJSON` may throw anything), else the value itself. */
function describeThrown(thrown: unknown): string {
  const message = (thrown as { message?: unknown } | null | undefined)?.message;
  return String(message ?? thrown);
}

/**
 * The shape of JSON text as `JSON.stringify` writes it (no whitespace): a string followed
 * by `:` is a key, compared as written (the encoder escapes none of `__proto__`'s characters).
 */
export function jsonShape(json: string): PayloadShape {
  let depth = 0;
  const shape: PayloadShape = { depth: 0, forbiddenKey: false };
  let stringStart = -1;
  for (let i = 0; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (stringStart >= 0) {
      if (char === 0x5c)
        i++; // backslash: skip the escaped character
      else if (char === 0x22) {
        if (json.charCodeAt(i + 1) === 0x3a && json.slice(stringStart + 1, i) === FORBIDDEN_KEY) shape.forbiddenKey = true;
        stringStart = -1;
      }
    } else if (char === 0x22) stringStart = i;
    else if (char === 0x7b || char === 0x5b) shape.depth = Math.max(shape.depth, ++depth);
    else if (char === 0x7d || char === 0x5d) depth--;
  }
  return shape;
}

/** Bytes of `text` in UTF-8 (lone surrogates count 3, as TextEncoder replaces them). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
