import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { GEO_SUBSCRIBE_METADATA } from './metadata-keys.js';
import { GeoEnvelopeInterceptor } from './geo-envelope.interceptor.js';
import type { GeoSubscribeMetadata, GeoSubscribeOptions } from './geo-subscribe.options.js';

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
 *   onMessage(@GeoEventPayload(new ValidationPipe()) message: ChatMessageDto) {
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
