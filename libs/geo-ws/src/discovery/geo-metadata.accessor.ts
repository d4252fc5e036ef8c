import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { GEO_SUBSCRIBE_METADATA } from '../decorators/metadata-keys.js';
import type { GeoSubscribeMetadata } from '../decorators/geo-subscribe.options.js';

/** Reads `@GeoSubscribe` metadata. */
@Injectable()
export class GeoMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getSubscription(method: (...args: unknown[]) => unknown): GeoSubscribeMetadata | undefined {
    return this.reflector.get<GeoSubscribeMetadata | undefined>(GEO_SUBSCRIBE_METADATA, method);
  }
}
