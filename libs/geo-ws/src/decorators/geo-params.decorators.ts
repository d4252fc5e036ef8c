import type { PipeTransform, Type } from '@nestjs/common';
import { GEO_PARAM_ARGS_METADATA } from './metadata-keys.js';
import { GeoConfigError } from '../errors/geo-config.error.js';

/** The values geo-ws can inject into a `@GeoSubscribe` handler. */
export const GeoParamType = {
  /** The payload: the client's `data` (what pipes validate). Same number as Nest's body/payload so `ValidationPipe` treats it as such. */
  PAYLOAD: 3,
  ENVELOPE: 20,
  USER: 21,
  CONNECTION: 22,
} as const;
export type GeoParamType = (typeof GeoParamType)[keyof typeof GeoParamType];

function geoParam(type: GeoParamType, pipes: (PipeTransform | Type<PipeTransform>)[] = []): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined)
      throw new GeoConfigError('geo-ws parameter decorators work on method parameters only: put them on a @GeoSubscribe handler.');
    const existing = (Reflect.getMetadata(GEO_PARAM_ARGS_METADATA, target.constructor, key) ?? {}) as Record<string, unknown>;
    Reflect.defineMetadata(
      GEO_PARAM_ARGS_METADATA,
      { ...existing, [`${type}:${index}`]: { index, data: undefined, pipes } },
      target.constructor,
      key,
    );
  };
}

/**
 * The event's payload (`data` as the client sent it), after the given pipes.
 * @example onMessage(@GeoEventPayload(new ValidationPipe({ whitelist: true })) dto: ChatMessageDto)
 */
export function GeoEventPayload(...pipes: (PipeTransform | Type<PipeTransform>)[]): ParameterDecorator {
  return geoParam(GeoParamType.PAYLOAD, pipes);
}

/**
 * The envelope as the server stamped it, without `seq` (not assigned yet):
 * `{ event_id, room_id, type, sender, timestamp, region, data }`.
 */
export function GeoEventEnvelope(): ParameterDecorator {
  return geoParam(GeoParamType.ENVELOPE);
}

/** The connection's authenticated principal (`{ id, claims }`). */
export function GeoUser(): ParameterDecorator {
  return geoParam(GeoParamType.USER);
}

/** The `GeoConnection` the event came from (its id, principal, region and rooms). */
export function GeoConnectedClient(): ParameterDecorator {
  return geoParam(GeoParamType.CONNECTION);
}
