import { isUtf8 } from 'node:buffer';
import type { RawData } from 'ws';
import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';

// What the dispatcher checks of a message before reading it as a frame, and which refusals
// the client brought on itself.

/**
 * Refusals caused by what the client sent (they count against `limits.refusals`); not
 * the server's own troubles, nor NOT_JOINED, which a resuming client meets in passing.
 */
const CLIENT_FAULTS: ReadonlySet<string> = new Set<string>(
  Object.values(GeoErrorCode).filter(
    (code) => code !== GeoErrorCode.UNAVAILABLE && code !== GeoErrorCode.INTERNAL && code !== GeoErrorCode.NOT_JOINED,
  ),
);

/** Whether a refusal with this code counts against the connection's refusal budget. */
export function isClientFault(code: string): boolean {
  return CLIENT_FAULTS.has(code);
}

/**
 * A MessagePack connection sends binary frames only; a JSON connection sends text frames, or
 * binary frames holding UTF-8 JSON (accepted since v1), never MessagePack.
 */
export function checkFrameType(msgpack: boolean, isBinary: boolean, bytes: Buffer): void {
  if (msgpack && !isBinary)
    throw new GeoProtocolError(GeoErrorCode.MALFORMED_FRAME, 'this connection speaks MessagePack (geo-ws.v1.msgpack): send binary frames');
  if (!msgpack && isBinary && !isUtf8(bytes))
    throw new GeoProtocolError(
      GeoErrorCode.MALFORMED_FRAME,
      'binary frames on a JSON connection must hold UTF-8 JSON; for MessagePack, connect with the subprotocol geo-ws.v1.msgpack',
    );
}

/** One WebSocket message as one Buffer, however ws delivered it. */
export function rawToBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}
