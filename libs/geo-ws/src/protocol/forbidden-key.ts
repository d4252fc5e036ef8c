import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';

/**
 * The one object key no frame may carry, in either codec: MessagePack readers (msgpackr,
 * here and in the SDK) rename it to `__proto_` where `JSON.parse` keeps it, so the members
 * of one room would see different data by codec; and it is the classic prototype-pollution
 * key for any code that merges client data into its own objects.
 */
export const FORBIDDEN_KEY = '__proto__';

/** The refusal of a frame with the {@link FORBIDDEN_KEY} (both codecs say the same). */
export function forbiddenKey(eventId?: string): GeoProtocolError {
  return new GeoProtocolError(
    GeoErrorCode.MALFORMED_FRAME,
    `the frame has an object key "${FORBIDDEN_KEY}", which is not accepted (MessagePack readers rename it); use another key`,
    eventId,
  );
}
