import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { GEO_SUBSCRIBE_METADATA } from './metadata-keys.js';
import type { GeoSubscribeMetadata } from './geo-subscribe.options.js';
import type { GeoConnection } from './geo-connection.js';
import type { GeoEnvelopeDraft, GeoInboundEvent } from '../envelope/geo-envelope.interface.js';
import { assertEnvelope, inboundEventOf, utcTimestamp } from '../envelope/envelope.rules.js';

/** The stamped envelope of each in-flight event, keyed by the frame data object. */
const drafts = new WeakMap<object, GeoEnvelopeDraft>();

/** @internal The envelope the interceptor stamped for this frame (for `@GeoEventEnvelope()`). */
export function stampedEnvelopeOf(inbound: unknown): GeoEnvelopeDraft | undefined {
  return typeof inbound === 'object' && inbound !== null ? drafts.get(inbound) : undefined;
}

/**
 * Enforces the global envelope around every `@GeoSubscribe` handler (bound by the
 * decorator itself, so it always runs).
 *
 * On the way in it validates the client's `{ event_id, room_id, data }` (refusing any
 * server-owned field) and stamps `type`, `sender` (the authenticated principal),
 * `region` and a UTC `timestamp`. On the way out it wraps the handler's result as the
 * envelope's `data` and checks the whole envelope before the server appends it.
 */
@Injectable()
export class GeoEnvelopeInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'ws') return next.handle();
    const ws = context.switchToWs();
    const connection = ws.getClient<GeoConnection>();
    const frameData = ws.getData<object>();
    const subscription = Reflect.getMetadata(GEO_SUBSCRIBE_METADATA, context.getHandler()) as GeoSubscribeMetadata;
    const inbound: GeoInboundEvent = inboundEventOf(frameData);
    const draft: GeoEnvelopeDraft = {
      event_id: inbound.event_id,
      room_id: inbound.room_id,
      type: subscription.event,
      sender: connection.principal.id,
      timestamp: utcTimestamp(),
      region: connection.region,
      data: inbound.data,
      ...(subscription.scope === 'regional' ? { scope: 'regional' as const } : {}),
    };
    drafts.set(frameData, draft);
    return next.handle().pipe(map((result) => sealEnvelope(draft, result)));
  }
}

/** The envelope to append: the stamped fields plus the handler's result as `data`. */
export function sealEnvelope(draft: GeoEnvelopeDraft, result: unknown): GeoEnvelopeDraft {
  const data = result === undefined ? draft.data : result;
  try {
    JSON.stringify(data);
  } catch (error) {
    throw new Error(`geo-ws: handler of "${draft.type}" returned data that is not JSON-serialisable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const sealed = { ...draft, data };
  assertEnvelope({ ...sealed, seq: null }, { logged: false });
  return sealed;
}
