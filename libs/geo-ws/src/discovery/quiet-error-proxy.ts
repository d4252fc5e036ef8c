import type { ExternalExceptionsHandler } from '@nestjs/core/exceptions/external-exceptions-handler.js';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { ExternalContextCreator } from '@nestjs/core/helpers/external-context-creator.js';

type Target = (...args: unknown[]) => Promise<unknown>;

/**
 * Nest's error proxy for external contexts, less one line: an exception that no user
 * filter handled is rethrown without `ExternalExceptionFilter`'s ERROR log. Nest's own
 * gateways do not log a `WsException` either; geo-ws answers it with `geo.error`, counts
 * it, and logs at ERROR (with the stack) only what it cannot map to a refusal. Without
 * this, a client that makes a handler throw 1,000 times writes 1,000 ERROR lines.
 */
class QuietErrorProxy {
  createProxy(target: Target, exceptions: ExternalExceptionsHandler, type: string): Target {
    return async (...args: unknown[]) => {
      try {
        return await target(...args);
      } catch (error) {
        const host = new ExecutionContextHost(args);
        host.setType(type);
        // The user's @UseFilters / global filters, exactly as Nest would run them.
        const handled: unknown = exceptions.invokeCustomFilters(error, host);
        if (handled === undefined) throw error;
        return handled;
      }
    };
  }
}

/**
 * `contextCreator` with the quiet error proxy: the same guards, interceptors, pipes and
 * filters. Nest keeps the proxy in an instance field (`externalErrorProxy`, read by
 * `create`); if a Nest version stops doing so, the creator is used as it is (refusals are
 * then logged by Nest again, which test/refusal-logs.e2e-spec.ts would catch).
 */
export function quietContextCreator(contextCreator: ExternalContextCreator): ExternalContextCreator {
  if (!('externalErrorProxy' in contextCreator)) return contextCreator;
  return Object.create(contextCreator, { externalErrorProxy: { value: new QuietErrorProxy() } }) as ExternalContextCreator;
}
