import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { ExternalContextCreator } from '@nestjs/core/helpers/external-context-creator.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { GEO_CONTEXT_TYPE, GEO_PARAM_ARGS_METADATA } from '../decorators/metadata-keys.js';
import type { GeoSubscribeMetadata } from '../decorators/geo-subscribe.options.js';
import { EVENT_TYPE_PATTERN, RESERVED_EVENT_PREFIX } from '../envelope/envelope.rules.js';
import type { GeoEnvelopeDraft } from '../envelope/geo-envelope.interface.js';
import { GeoConfigError } from '../errors/geo-config.error.js';
import type { GeoConnection } from '../decorators/geo-connection.js';
import { GeoMetadataAccessor } from './geo-metadata.accessor.js';
import { GeoParamsFactory } from './geo-params.factory.js';
import { quietContextCreator } from './quiet-error-proxy.js';

/** A discovered `@GeoSubscribe` handler, wrapped in Nest's guards/interceptors/pipes/filters. */
export interface GeoHandler {
  readonly subscription: GeoSubscribeMetadata;
  /** `Class.method`, for logs and errors. */
  readonly name: string;
  /** Runs the whole Nest pipeline; resolves to the sealed envelope (without `seq`). */
  invoke(connection: GeoConnection, frameData: object): Promise<GeoEnvelopeDraft>;
}

/**
 * Finds every `@GeoSubscribe` method on the app's providers and wraps it with
 * `ExternalContextCreator` under the `ws` context type, so users' guards, interceptors,
 * pipes and filters apply as on any Nest gateway. What no filter handles is rethrown to
 * the dispatcher without Nest's ERROR line: a refusal is a `geo.error`, not a server error.
 */
@Injectable()
export class GeoHandlerExplorer {
  private readonly logger = new Logger(GeoHandlerExplorer.name);
  private readonly paramsFactory = new GeoParamsFactory();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: GeoMetadataAccessor,
    private readonly contextCreator: ExternalContextCreator,
  ) {}

  /** All handlers by event name. Throws `GeoConfigError` on a bad or duplicate event name. */
  explore(): Map<string, GeoHandler> {
    const handlers = new Map<string, GeoHandler>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      // Resolve from the instance, not the token, so useValue/useFactory providers are found too.
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const subscription = this.accessor.getSubscription(prototype[methodName] as (...args: unknown[]) => unknown);
        if (!subscription) continue;
        const name = `${instance.constructor.name}.${methodName}`;
        this.assertUsable(wrapper, name, subscription, handlers);
        handlers.set(subscription.event, this.wrap(instance, methodName, name, subscription));
        this.logger.log(`Mapped {${subscription.event}, ${subscription.ephemeral ? 'ephemeral' : subscription.scope}} to ${name}`);
      }
    }
    return handlers;
  }

  private assertUsable(
    wrapper: InstanceWrapper,
    name: string,
    subscription: GeoSubscribeMetadata,
    handlers: Map<string, GeoHandler>,
  ): void {
    const { event } = subscription;
    if (!wrapper.isDependencyTreeStatic()) {
      throw new GeoConfigError(
        `${name} is request-scoped or depends on a request-scoped provider; @GeoSubscribe handlers must live on singleton providers.`,
      );
    }
    if (event.startsWith(RESERVED_EVENT_PREFIX)) {
      throw new GeoConfigError(
        `@GeoSubscribe('${event}') on ${name}: names starting with "geo." are reserved for the protocol; rename the event.`,
      );
    }
    if (!EVENT_TYPE_PATTERN.test(event)) {
      throw new GeoConfigError(
        `@GeoSubscribe('${event}') on ${name}: event names start with a lower-case letter and use letters, digits, ".", "_", "-" (at most 64).`,
      );
    }
    const existing = handlers.get(event);
    if (existing) throw new GeoConfigError(`event "${event}" has two handlers (${existing.name} and ${name}); keep one.`);
    if (subscription.ephemeral && subscription.scope === 'regional') {
      this.logger.warn(`${name}: ephemeral events are never stored; scope 'regional' also keeps them in this region.`);
    }
  }

  private wrap(instance: object, methodName: string, name: string, subscription: GeoSubscribeMetadata): GeoHandler {
    const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[methodName];
    const run = quietContextCreator(this.contextCreator).create(
      instance,
      callback,
      methodName,
      GEO_PARAM_ARGS_METADATA,
      this.paramsFactory,
      undefined,
      undefined,
      undefined,
      GEO_CONTEXT_TYPE,
    );
    return {
      subscription,
      name,
      invoke: (connection, frameData) => run(connection, frameData, subscription.event) as Promise<GeoEnvelopeDraft>,
    };
  }
}
