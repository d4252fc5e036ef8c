import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
// The server's own parser: the client must refuse exactly what it would refuse.
import { DEFAULT_MAX_DEPTH as SERVER_MAX_DEPTH, parseFrame, parseMsgpackFrame } from '../../../geo-ws/src/protocol/frames.js';
import { GeoClientError } from '../errors.js';
import { msgpackCodec } from '../msgpack.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME_BYTES, encodePublish, jsonShape, utf8Length } from './publish-frame.js';

const limits = { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, maxDepth: DEFAULT_MAX_DEPTH };

/** A JSON value wrapped in arrays and objects, `wraps` levels deep. */
const deepJson = fc
  .tuple(
    fc.jsonValue({ maxDepth: 4 }),
    fc.array(fc.boolean(), { maxLength: 45, size: 'max' }),
    // Now and then the key both sides refuse (MessagePack readers rename it).
    fc.oneof({ weight: 9, arbitrary: fc.string({ maxLength: 3 }) }, { weight: 1, arbitrary: fc.constant('__proto__') }),
  )
  .map(([leaf, wraps, key]) => wraps.reduce<unknown>((value, asArray) => (asArray ? [value] : { [key]: value }), leaf));

function refusal(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? `threw ${String(error)}`;
  }
}

describe('publish frames: checked like the server checks them', () => {
  it('the client defaults are the server defaults', () => {
    expect(DEFAULT_MAX_DEPTH).toBe(SERVER_MAX_DEPTH);
    expect(DEFAULT_MAX_FRAME_BYTES).toBe(64 * 1024);
  });

  it('any payload: the client refuses it for depth exactly when the server parser would (fast-check)', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(deepJson, (data) => {
        const client = refusal(() => encodePublish('chat.message', 'e1', 'room-1', data, limits));
        outcomes.set(client ?? 'sent', (outcomes.get(client ?? 'sent') ?? 0) + 1);
        const frame = JSON.stringify({ event: 'chat.message', data: { event_id: 'e1', room_id: 'room-1', data } });
        const server = refusal(() => parseFrame(frame, SERVER_MAX_DEPTH));
        expect(client).toBe(server);
        if (client === undefined) {
          const wire = encodePublish('chat.message', 'e1', 'room-1', data, limits);
          expect(wire).toBe(frame); // the bytes the server would parse
          expect(parseFrame(wire as string, SERVER_MAX_DEPTH)).toEqual(JSON.parse(frame));
        }
      }),
      { numRuns: 3000 },
    );
    // Both sides of the limit were exercised.
    expect(outcomes.get('sent')).toBeGreaterThan(300);
    expect(outcomes.get('MALFORMED_FRAME')).toBeGreaterThan(300);
  });

  it('MessagePack: any payload is refused for depth exactly when the server would, and reads back as the JSON frame (fast-check)', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(deepJson, (data) => {
        const client = refusal(() => encodePublish('chat.message', 'e1', 'room-1', data, limits, msgpackCodec));
        outcomes.set(client ?? 'sent', (outcomes.get(client ?? 'sent') ?? 0) + 1);
        const frame = JSON.stringify({ event: 'chat.message', data: { event_id: 'e1', room_id: 'room-1', data } });
        expect(client).toBe(refusal(() => parseFrame(frame, SERVER_MAX_DEPTH)));
        if (client === undefined) {
          const wire = encodePublish('chat.message', 'e1', 'room-1', data, limits, msgpackCodec) as Uint8Array;
          expect(wire).toBeInstanceOf(Uint8Array);
          expect(JSON.stringify(parseMsgpackFrame(wire, SERVER_MAX_DEPTH))).toBe(JSON.stringify(parseFrame(frame, SERVER_MAX_DEPTH)));
        }
      }),
      { numRuns: 2000 },
    );
    expect(outcomes.get('sent')).toBeGreaterThan(200);
    expect(outcomes.get('MALFORMED_FRAME')).toBeGreaterThan(200);
  });

  it('MessagePack: values JSON turns into something else are sent as JSON would send them (the server refuses extension types)', () => {
    const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    const data = { at, nan: NaN, list: [undefined, 1], gone: undefined, map: new Map([['a', 1]]), nested: { toJSON: () => 'custom' } };
    const wire = encodePublish('chat.message', 'e1', 'r', data, limits, msgpackCodec) as Uint8Array;
    expect(parseMsgpackFrame(wire).data).toEqual(JSON.parse(JSON.stringify({ event_id: 'e1', room_id: 'r', data })));
    expect(refusal(() => encodePublish('chat.message', 'e1', 'r', undefined, limits, msgpackCodec))).toBe('INVALID_ENVELOPE');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(refusal(() => encodePublish('chat.message', 'e1', 'r', cycle, limits, msgpackCodec))).toBe('MALFORMED_FRAME');
    expect(refusal(() => encodePublish('chat.message', 'e1', 'r', { big: 1n }, limits, msgpackCodec))).toBe('MALFORMED_FRAME');
    expect(refusal(() => encodePublish('chat.message', 'e1', 'r', { text: 'x'.repeat(70_000) }, limits, msgpackCodec))).toBe(
      'PAYLOAD_TOO_LARGE',
    );
  });

  it('jsonShape ignores brackets inside strings and escapes, and finds __proto__ keys only', () => {
    expect(jsonShape('"[[{{"').depth).toBe(0);
    expect(jsonShape(JSON.stringify({ a: '\\"[{', b: [[1]] })).depth).toBe(3);
    expect(jsonShape(JSON.stringify([{}, [[[]]]])).depth).toBe(4);
    expect(jsonShape(JSON.stringify(JSON.parse('{"a":[{"__proto__":1}]}'))).forbiddenKey).toBe(true);
    expect(jsonShape('{"a":[{"__proto__":1}]}').forbiddenKey).toBe(true);
    // Values and look-alike keys are not the key.
    for (const data of [
      { a: '__proto__' },
      ['__proto__'],
      { '"__proto__': 1 },
      { 'x"__proto__': 1 },
      { __proto_: 1 },
      { a: '"__proto__":' },
    ]) {
      expect(jsonShape(JSON.stringify(data)).forbiddenKey).toBe(false);
    }
  });

  it('utf8Length is the byte length the server sees, lone surrogates included (fast-check)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' })), (text) => {
        expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'));
        const frame = JSON.stringify({ text });
        expect(utf8Length(frame)).toBe(Buffer.byteLength(frame, 'utf8'));
      }),
      { numRuns: 2000 },
    );
  });

  it('the frame limit is inclusive, as on the server (bytes > limit are refused)', () => {
    const frameBytes = (text: string) =>
      utf8Length(encodePublish('chat.message', 'e1', 'r', { text }, { maxFrameBytes: 1e9, maxDepth: 32 }) as string);
    const exact = frameBytes('x'.repeat(100));
    expect(
      refusal(() => encodePublish('chat.message', 'e1', 'r', { text: 'x'.repeat(100) }, { maxFrameBytes: exact, maxDepth: 32 })),
    ).toBeUndefined();
    expect(
      refusal(() => encodePublish('chat.message', 'e1', 'r', { text: 'x'.repeat(100) }, { maxFrameBytes: exact - 1, maxDepth: 32 })),
    ).toBe('PAYLOAD_TOO_LARGE');
  });

  it('errors are GeoClientErrors with the code the server would answer', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const [data, code] of [
      [cyclic, 'MALFORMED_FRAME'],
      [{ n: 1n }, 'MALFORMED_FRAME'],
      [undefined, 'INVALID_ENVELOPE'],
      [() => 1, 'INVALID_ENVELOPE'],
    ] as const) {
      let error: unknown;
      try {
        encodePublish('chat.message', 'e1', 'r', data, limits);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(GeoClientError);
      expect(error).toMatchObject({ code });
    }
  });
});
