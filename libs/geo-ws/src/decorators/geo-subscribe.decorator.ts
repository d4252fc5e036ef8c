import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { GEO_SUBSCRIBE_METADATA } from '../constants.js';
import { GeoEnvelopeInterceptor } from '../envelope/geo-envelope.interceptor.js';

/** Options of {@link GeoSubscribe}. */
export interface GeoSubscribeOptions {
  /**
   * `global` (default): the event goes to the room's global log, delivered in every
   * region. `regional`: it goes to this region's log of the room and never leaves the
   * region (G5); its envelope carries `scope: 'regional'`.
   */
  scope?: 'global' | 'regional';
  /**
   * Skip the log: at-most-once, no `seq` (null), no history, no resume. For typing
   * indicators and cursors.
   */
  ephemeral?: boolean;
  /**
   * Re-checks the token at the moment the action runs: not expired, not revoked on the
   * shared revocation list (any region). For payments, deletions, role changes.
   */
  critical?: boolean;
  /** Regions where this event may be published; elsewhere it is refused with FORBIDDEN. Default: all. */
  regions?: string[];
}

/** The metadata stored by {@link GeoSubscribe}. */
export interface GeoSubscribeMetadata extends Required<Omit<GeoSubscribeOptions, 'regions'>> {
  event: string;
  regions: string[] | undefined;
}

/**
 * Turns a provider method into the handler of a room event. Clients send
 * `{ "event": "<event>", "data": { event_id, room_id, data } }`; the method runs through
 * Nest's guards, interceptors, pipes and filters, and what it returns becomes the `data`
 * of the envelope appended to the room log (returning `undefined` keeps the client's).
 * Throw a `WsException` to refuse: the client gets `geo.error` and nothing is appended.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class ChatGateway {
 *   @GeoSubscribe('chat.message')
 *   onMessage(@EventPayload(new ValidationPipe()) message: ChatMessageDto) {
 *     return { text: message.text.trim() };
 *   }
 *
 *   @GeoSubscribe('chat.typing', { ephemeral: true })
 *   onTyping() {}
 * }
 * ```
 */
export function GeoSubscribe(event: string, options: GeoSubscribeOptions = {}): MethodDecorator {
  const metadata: GeoSubscribeMetadata = {
    event,
    scope: options.scope ?? 'global',
    ephemeral: options.ephemeral ?? false,
    critical: options.critical ?? false,
    regions: options.regions,
  };
  return applyDecorators(SetMetadata(GEO_SUBSCRIBE_METADATA, metadata), UseInterceptors(GeoEnvelopeInterceptor));
}
