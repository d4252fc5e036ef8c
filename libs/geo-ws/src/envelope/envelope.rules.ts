import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { GeoEnvelope, GeoInboundEvent } from './geo-envelope.interface.js';

/** UUIDs, ULIDs, nanoids: letters, digits, `_` and `-`, at most 64 characters. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Room ids: 1-128 characters, no whitespace, no control or invisible characters.
 * Characters that mean something to a broker (`.`, `*`, `>`, `:`, `{`, `}`) are allowed
 * here; every transport encodes room ids so they can never address another room.
 */
export const ROOM_ID_PATTERN = /^[^\s\p{C}]{1,128}$/u;
/** Event names: lower-case start, then letters, digits, `.`, `_`, `-`; `geo.*` is reserved. */
export const EVENT_TYPE_PATTERN = /^[a-z][A-Za-z0-9._-]{0,63}$/;
export const RESERVED_EVENT_PREFIX = 'geo.';

/** Fields only the server may set; a client that sends one is refused, not silently corrected. */
const SERVER_OWNED_FIELDS = ['sender', 'region', 'timestamp', 'seq', 'type', 'scope'] as const;
const INBOUND_FIELDS = new Set(['event_id', 'room_id', 'data']);

export function isValidRoomId(value: unknown): value is string {
  return typeof value === 'string' && ROOM_ID_PATTERN.test(value);
}

export function isValidEventId(value: unknown): value is string {
  return typeof value === 'string' && EVENT_ID_PATTERN.test(value);
}

function invalid(message: string, eventId?: string): never {
  throw new GeoProtocolError(GeoErrorCode.INVALID_ENVELOPE, message, eventId);
}

/**
 * Checks what a client sent to publish. Returns it typed, or throws
 * `GeoProtocolError(INVALID_ENVELOPE)` naming the first bad field.
 */
export function parseInboundEvent(value: unknown): GeoInboundEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalid('data must be an object: { event_id, room_id, data }');
  }
  const frame = value as Record<string, unknown>;
  const eventId = isValidEventId(frame.event_id) ? frame.event_id : undefined;
  if (!eventId) invalid('event_id must be 1-64 characters of [A-Za-z0-9_-] (a UUID or ULID)');
  for (const field of SERVER_OWNED_FIELDS) {
    if (field in frame) invalid(`${field} is set by the server; do not send it`, eventId);
  }
  for (const field of Object.keys(frame)) {
    if (!INBOUND_FIELDS.has(field)) invalid(`unknown field "${field}"; send only event_id, room_id, data`, eventId);
  }
  if (!isValidRoomId(frame.room_id)) {
    invalid('room_id must be 1-128 characters with no whitespace or control characters', eventId);
  }
  if (!('data' in frame) || frame.data === undefined) invalid('data is required (use null for none)', eventId);
  return { event_id: eventId, room_id: frame.room_id, data: frame.data };
}

/** What was parsed of each frame's data: the server checks it first, the interceptor reuses it. */
const parsedInbound = new WeakMap<object, GeoInboundEvent>();

/** `parseInboundEvent`, done once per frame however many steps of the pipeline ask. */
export function inboundEventOf(value: unknown): GeoInboundEvent {
  const known = typeof value === 'object' && value !== null ? parsedInbound.get(value) : undefined;
  if (known) return known;
  const inbound = parseInboundEvent(value);
  parsedInbound.set(value as object, inbound);
  return inbound;
}

/** Milliseconds-precision UTC ISO-8601 with `Z`, as every envelope carries. */
export function utcTimestamp(date: Date = new Date()): string {
  return date.toISOString();
}

const UTC_TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Checks a complete envelope on the way out (before append and before it reaches a
 * client). A failure here is a server bug, so it throws a plain `Error`.
 */
export function assertEnvelope(envelope: GeoEnvelope, options: { logged: boolean }): void {
  const problems: string[] = [];
  if (!isValidEventId(envelope.event_id)) problems.push('event_id');
  if (!isValidRoomId(envelope.room_id)) problems.push('room_id');
  if (typeof envelope.type !== 'string' || !EVENT_TYPE_PATTERN.test(envelope.type)) problems.push('type');
  if (typeof envelope.sender !== 'string' || envelope.sender.length === 0) problems.push('sender');
  if (typeof envelope.region !== 'string' || envelope.region.length === 0) problems.push('region');
  if (typeof envelope.timestamp !== 'string' || !UTC_TIMESTAMP_PATTERN.test(envelope.timestamp)) problems.push('timestamp');
  if (options.logged ? !(Number.isInteger(envelope.seq) && (envelope.seq as number) > 0) : envelope.seq !== null) {
    problems.push('seq');
  }
  if (envelope.data === undefined) problems.push('data');
  if (problems.length > 0) throw new Error(`geo-ws: malformed envelope (${problems.join(', ')}) for event ${envelope.event_id}`);
}
