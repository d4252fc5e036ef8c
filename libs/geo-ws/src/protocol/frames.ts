import { isValidEventId, isValidRoomId } from '../envelope/envelope.rules.js';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { DEFAULT_MAX_DEPTH } from './wire.js';
import { FORBIDDEN_KEY, forbiddenKey } from './forbidden-key.js';
import { guardMsgpack } from './msgpack-guard.js';
import { unpackMsgpack } from './msgpack.js';

/** Every frame, both ways: Nest's `{ event, data }` shape. */
export interface Frame {
  event: string;
  data: unknown;
}

/** Where a joining member starts. */
export interface JoinPosition {
  /** Last `seq` the client has; omitted for a fresh join (live only). */
  since?: number;
  /** The epoch `since` belongs to. */
  epoch?: string;
}

/** The answer to a join: what `geo.joined` tells the client. */
export interface JoinOutcome {
  /** The position the client will be at once the replay below is delivered; live events follow. */
  seq: number;
  epoch: string;
  /** False when events after `since` could not all be delivered (retention passed or another epoch). */
  recovered: boolean;
}

/** `geo.joined` as sent: the outcome, and what the transport promises about its seqs. */
export interface JoinedFrame extends JoinOutcome {
  room: string;
  scope?: 'regional';
  /** Present (true) when the log numbers seqs 1, 2, 3… with none skipped (`GeoTransport.contiguousSeq`). */
  contiguous?: true;
}

/** `geo.join` payload. */
export interface JoinRequest extends JoinPosition {
  room: string;
  /** Resume position in this region's regional log of the room. */
  regional?: JoinPosition;
}

/** `geo.welcome` as sent: who and where the connection is, and what the server speaks. */
export interface WelcomeFrame {
  connection_id: string;
  region: string;
  sender: string;
  expires_at?: string;
  session_id?: string;
  restored?: Record<string, { seq: number; epoch: string }>;
  report_ms?: number;
  /** The server closes a connection that sends nothing this long (4002); absent when it never does. */
  idle_timeout_ms?: number;
  /** Protocol additions this server understands (`GeoFeature`); a client ignores names it does not know. */
  features: string[];
}

// The parsers' default depth is the protocol's; the SDK's specs compare theirs with it here.
export { DEFAULT_MAX_DEPTH };

/**
 * Parses one raw WebSocket message into a frame, or throws `MALFORMED_FRAME`. `data` may
 * nest arrays and objects at most `maxDepth` levels: deeper input is refused here, before
 * pipes, validators or encoders recurse into it. No object in it may have the key
 * {@link FORBIDDEN_KEY}.
 */
export function parseFrame(raw: string, maxDepth: number = DEFAULT_MAX_DEPTH): Frame {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'frame is not valid JSON; send {"event": string, "data": ...}');
  }
  return frameOf(value, maxDepth);
}

/**
 * The same for a MessagePack frame (subprotocol `geo-ws.v1.msgpack`): its structure is
 * checked before it is decoded (depth, lengths, JSON's types only), then the same rules apply.
 */
export function parseMsgpackFrame(bytes: Uint8Array, maxDepth: number = DEFAULT_MAX_DEPTH): Frame {
  const { hasForbiddenKey } = guardMsgpack(bytes, maxDepth);
  let value: unknown;
  try {
    value = unpackMsgpack(bytes);
  } catch {
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'frame is not valid MessagePack; send a map {event: string, data: ...}');
  }
  // Decoded, the key is gone (renamed): refuse it now, naming the event as the JSON path does.
  if (hasForbiddenKey) throw forbiddenKey(eventIdOf((value as { data?: unknown } | null)?.data));
  return frameOf(value, maxDepth);
}

function frameOf(value: unknown, maxDepth: number): Frame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'frame must be an object {"event": string, "data": ...}');
  }
  if (Object.hasOwn(value, FORBIDDEN_KEY)) throw forbiddenKey();
  const { event, data } = value as Record<string, unknown>;
  if (typeof event !== 'string' || event.length === 0 || event.length > 128) {
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'frame.event must be a non-empty string of at most 128 characters');
  }
  const problem = shapeProblem(data, maxDepth);
  if (problem === 'depth') {
    throw new GeoProtocolError(
      GeoErrorCode.MALFORMED_FRAME,
      `frame.data nests arrays or objects deeper than ${maxDepth} levels`,
      eventIdOf(data),
    );
  }
  if (problem === 'key') throw forbiddenKey(eventIdOf(data));
  return { event, data };
}

/**
 * Reads a frame only to name it in a refusal (a frame too large to process): its
 * `event_id` and room, when it has valid ones, so the client can settle that request.
 */
export function peekFrame(raw: string | Uint8Array): Partial<Frame> {
  if (typeof raw !== 'string') {
    try {
      return { data: parseMsgpackFrame(raw, DEFAULT_MAX_DEPTH).data };
    } catch {
      return {};
    }
  }
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null ? { data: (value as { data?: unknown }).data } : {};
  } catch {
    return {};
  }
}

/** The `event_id` a frame's data names, when it is a valid one. */
export function eventIdOf(data: unknown): string | undefined {
  const id = (data as { event_id?: unknown } | null | undefined)?.event_id;
  return isValidEventId(id) ? id : undefined;
}

/** The room a frame's data names (`room_id` of a publish, `room` of a join or leave), when valid. */
export function roomOf(data: unknown): string | undefined {
  const fields = data as { room_id?: unknown; room?: unknown } | null | undefined;
  const room = fields?.room_id ?? fields?.room;
  return isValidRoomId(room) ? room : undefined;
}

/**
 * Whether parsed data nests deeper than `maxDepth` or has the {@link FORBIDDEN_KEY}
 * (`JSON.parse` makes it an own property). Iterative: a recursive walk would itself
 * overflow the stack on hostile input.
 */
function shapeProblem(value: unknown, maxDepth: number): 'depth' | 'key' | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) return 'depth';
    if (!Array.isArray(node) && Object.hasOwn(node, FORBIDDEN_KEY)) return 'key';
    for (const child of (Array.isArray(node) ? node : Object.values(node)) as unknown[]) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return undefined;
}

function position(value: unknown, where: string): JoinPosition {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) throw invalidJoin(`${where} must be an object`);
  const { since, epoch } = value as Record<string, unknown>;
  if (since !== undefined && !(Number.isSafeInteger(since) && (since as number) >= 0)) {
    throw invalidJoin(`${where}since must be a non-negative integer (the last seq you received)`);
  }
  if (epoch !== undefined && (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 128)) {
    throw invalidJoin(`${where}epoch must be the epoch string from geo.joined`);
  }
  return { since: since as number | undefined, epoch: epoch };
}

function invalidJoin(message: string): GeoProtocolError {
  return new GeoProtocolError(GeoErrorCode.INVALID_ENVELOPE, `geo.join: ${message}`);
}

/** Checks a `geo.join` payload. */
export function parseJoin(data: unknown): JoinRequest {
  return parseJoinAt(data, '');
}

/** One room's join; `at` names where it sits in a batch (`rooms[3].`), so a refusal points at it. */
function parseJoinAt(data: unknown, at: string): JoinRequest {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw invalidJoin(`${at ? at.slice(0, -1) : 'data'} must be { room, since?, epoch? }`);
  const { room, regional } = data as Record<string, unknown>;
  if (!isValidRoomId(room)) throw invalidJoin(`${at}room must be 1-128 characters with no whitespace or control characters`);
  return { room, ...position(data, at), regional: regional === undefined ? undefined : position(regional, `${at}regional.`) };
}

/** A `geo.join` of many rooms (`{ rooms: [...] }`, feature `join.rooms`) rather than one. */
export function isJoinBatch(data: unknown): data is { rooms: unknown } {
  return typeof data === 'object' && data !== null && Object.hasOwn(data, 'rooms');
}

/**
 * Checks a `geo.join { rooms: [...] }`: 1 to `maxRooms` entries, each what a single
 * `geo.join` takes, no room twice. Checked whole: one bad entry refuses the batch
 * (`INVALID_ENVELOPE`, naming the entry) and nothing is joined.
 */
export function parseJoinBatch(data: { rooms: unknown }, maxRooms: number): JoinRequest[] {
  const { rooms } = data;
  if (Object.hasOwn(data, 'room')) throw invalidJoin('send either { room, since?, epoch? } or { rooms: [...] }, not both');
  if (!Array.isArray(rooms) || rooms.length === 0) throw invalidJoin('rooms must be a non-empty array of { room, since?, epoch? }');
  if (rooms.length > maxRooms) throw invalidJoin(`rooms has ${rooms.length} entries; at most ${maxRooms} (limits.maxRoomsPerConnection)`);
  const seen = new Set<string>();
  return rooms.map((entry, i) => {
    const request = parseJoinAt(entry, `rooms[${i}].`);
    // Two joins of one room in one batch would race each other: the client meant one of them.
    if (seen.has(request.room)) throw invalidJoin(`rooms[${i}]: room "${request.room}" is listed twice; list each room once`);
    seen.add(request.room);
    return request;
  });
}

/** Checks a `geo.leave` payload. */
export function parseLeave(data: unknown): { room: string } {
  const room = (data as { room?: unknown } | null)?.room;
  if (!isValidRoomId(room)) {
    throw new GeoProtocolError(GeoErrorCode.INVALID_ENVELOPE, 'geo.leave: data must be { room } with a valid room id');
  }
  return { room };
}
