import { BadRequestException, ForbiddenException, HttpException, UnauthorizedException } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { GeoTransportUnavailableError } from './geo-transport-unavailable.error.js';
import { GeoErrorCode } from './geo-error-code.js';
import { GeoProtocolError } from './geo-protocol.error.js';

const KNOWN_CODES = new Set<string>(Object.values(GeoErrorCode));

function messageOf(response: unknown, fallback: string): string {
  if (typeof response === 'string') return response;
  if (response && typeof response === 'object' && 'message' in response) {
    const { message } = response;
    if (Array.isArray(message)) return message.join('; ');
    if (typeof message === 'string') return message;
  }
  return fallback;
}

/**
 * Maps whatever a handler pipeline threw to the `geo.error` the client gets.
 * `unexpected` is true for errors the server should log (bugs, not client mistakes).
 */
export function toProtocolError(error: unknown, eventId?: string): { error: GeoProtocolError; unexpected: boolean } {
  const make = (code: GeoErrorCode, message: string, unexpected = false) => ({
    error: new GeoProtocolError(code, message, eventId),
    unexpected,
  });
  if (error instanceof GeoProtocolError) {
    return { error: error.eventId || !eventId ? error : new GeoProtocolError(error.code, error.message, eventId), unexpected: false };
  }
  if (error instanceof WsException) {
    const payload = error.getError();
    if (payload && typeof payload === 'object' && 'code' in payload && KNOWN_CODES.has(String(payload.code))) {
      return make(payload.code as GeoErrorCode, messageOf(payload, error.message));
    }
    return make(GeoErrorCode.REJECTED, messageOf(payload, error.message));
  }
  if (error instanceof ForbiddenException) return make(GeoErrorCode.FORBIDDEN, messageOf(error.getResponse(), 'forbidden'));
  if (error instanceof UnauthorizedException) return make(GeoErrorCode.UNAUTHORIZED, messageOf(error.getResponse(), 'unauthorized'));
  if (error instanceof BadRequestException) return make(GeoErrorCode.VALIDATION_FAILED, messageOf(error.getResponse(), 'invalid payload'));
  if (error instanceof HttpException) return make(GeoErrorCode.REJECTED, messageOf(error.getResponse(), error.message));
  if (error instanceof GeoTransportUnavailableError) {
    return make(GeoErrorCode.UNAVAILABLE, `the room log is unreachable; retry with the same event_id (${error.message})`);
  }
  return make(GeoErrorCode.INTERNAL, 'internal error; retry with the same event_id', true);
}
