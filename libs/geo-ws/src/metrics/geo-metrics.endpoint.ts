import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.tokens.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import { GeoMetrics } from './geo-metrics.js';

/**
 * Serves the metrics registry at `metrics.path` (default `GET /metrics`) on the app's HTTP
 * server, through Nest's HTTP adapter (Express or Fastify). Registered in `onModuleInit`,
 * before Nest adds its not-found handler; outside any global prefix, where Prometheus
 * expects it.
 */
@Injectable()
export class GeoMetricsEndpoint implements OnModuleInit {
  private readonly logger = new Logger(GeoMetricsEndpoint.name);

  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    @Inject(GeoMetrics) private readonly metrics: GeoMetrics | null,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    const path = this.options.metrics?.path;
    const adapter = this.adapterHost.httpAdapter as typeof this.adapterHost.httpAdapter | undefined;
    if (!this.metrics || !path || !adapter) return;
    const { registry } = this.metrics;
    adapter.get(path, (_request: unknown, response: unknown) => {
      registry.metrics().then(
        (text) => {
          adapter.setHeader(response, 'Content-Type', registry.contentType);
          adapter.reply(response, text, 200);
        },
        (error: unknown) => {
          this.logger.error(`metrics could not be collected: ${(error as Error).message}`, (error as Error).stack);
          adapter.reply(response, 'metrics could not be collected', 500);
        },
      );
    });
  }
}
