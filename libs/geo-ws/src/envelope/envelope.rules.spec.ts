import { describe, expect, it } from '@jest/globals';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import { assertEnvelope, isValidRoomId, parseInboundEvent, utcTimestamp } from './envelope.rules.js';

describe('envelope rules', () => {
  const valid = { event_id: '01HZX3K9Q8V7N6M5B4C3D2E1F0', room_id: 'team.general', data: { text: 'hi' } };

  it('accepts a client event and returns only its three fields', () => {
    expect(parseInboundEvent(valid)).toEqual(valid);
  });

  it.each([
    ['no event_id', { ...valid, event_id: undefined }, /event_id/],
    ['an event_id over 64 characters', { ...valid, event_id: 'a'.repeat(65) }, /event_id/],
    ['an event_id with a slash', { ...valid, event_id: 'a/b' }, /event_id/],
    ['a forged sender', { ...valid, sender: 'admin' }, /sender is set by the server/],
    ['a forged seq', { ...valid, seq: 1 }, /seq is set by the server/],
    ['an unknown field', { ...valid, extra: true }, /unknown field "extra"/],
    ['no room', { ...valid, room_id: undefined }, /room_id/],
    ['a room with a newline', { ...valid, room_id: 'a\nb' }, /room_id/],
    ['no data', { event_id: valid.event_id, room_id: 'r' }, /data is required/],
    ['an array', [valid], /must be an object/],
  ])('refuses %s with INVALID_ENVELOPE', (_label, value, message) => {
    let thrown: unknown;
    try {
      parseInboundEvent(value);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GeoProtocolError);
    expect((thrown as GeoProtocolError).code).toBe('INVALID_ENVELOPE');
    expect((thrown as GeoProtocolError).message).toMatch(message);
  });

  it('allows broker-special characters in room ids (transports encode them) but not whitespace or control characters', () => {
    for (const room of ['a.b', 'a*', 'a>', '{a}:b', 'café', 'x'.repeat(128)]) expect(isValidRoomId(room)).toBe(true);
    for (const room of ['', 'a b', 'a\tb', 'a\u0000b', 'a\u200bb', 'x'.repeat(129)]) expect(isValidRoomId(room)).toBe(false);
  });

  it('stamps UTC timestamps with milliseconds and Z', () => {
    expect(utcTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe('2026-01-02T03:04:05.006Z');
  });

  it('checks complete envelopes on the way out', () => {
    const envelope = { ...valid, type: 'chat.message', sender: 'u', region: 'eu', timestamp: utcTimestamp(), seq: 3 };
    expect(() => assertEnvelope(envelope, { logged: true })).not.toThrow();
    expect(() => assertEnvelope({ ...envelope, seq: null }, { logged: false })).not.toThrow();
    expect(() => assertEnvelope({ ...envelope, seq: 0 }, { logged: true })).toThrow(/seq/);
    expect(() => assertEnvelope({ ...envelope, timestamp: '2026-01-02 03:04' }, { logged: true })).toThrow(/timestamp/);
  });
});
