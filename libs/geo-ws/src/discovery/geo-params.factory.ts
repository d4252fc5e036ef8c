import type { ParamsFactory } from '@nestjs/core/helpers/external-context-creator.js';
import { GeoParamType } from '../decorators/geo-params.decorators.js';
import { stampedEnvelopeOf } from '../decorators/geo-envelope.interceptor.js';
import type { GeoConnection } from '../decorators/geo-connection.js';

/** Resolves the geo-ws parameter decorators from a handler call's `(connection, frameData, event)`. */
export class GeoParamsFactory implements ParamsFactory {
  exchangeKeyForValue(type: number, _data: unknown, args: unknown[]): unknown {
    const [connection, frameData] = args as [GeoConnection, { data?: unknown } | undefined];
    switch (type) {
      case GeoParamType.PAYLOAD:
        return frameData?.data;
      case GeoParamType.ENVELOPE:
        return stampedEnvelopeOf(frameData);
      case GeoParamType.USER:
        return connection.principal;
      case GeoParamType.CONNECTION:
        return connection;
      default:
        return undefined;
    }
  }
}
