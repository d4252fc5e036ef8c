import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { GeoMetrics } from './geo-metrics.js';

/**
 * Serves the metrics registry at `metrics.path` (default `GET /metrics`) on the app's HTTP
 * server, through Nest's HTTP adapter (Express or Fastify). Registered in `onModuleInit`,
 * before Nest adds its not-found handler; outside any global prefix, where Prometheus
 * expects it. The path is read from `GeoMetrics`, which exists only when `metrics` is on.
 */
@Injectable()
export class GeoMetricsEndpoint implements OnModuleInit {
  private readonly logger = new Logger(GeoMetricsEndpoint.name);

  constructor(
    @Inject(GeoMetrics) private readonly metrics: GeoMetrics | null,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    const path = this.metrics?.path;
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
