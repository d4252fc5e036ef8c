import { Controller, Get, Header, HttpCode, HttpStatus, Inject, Res } from '@nestjs/common';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.tokens.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import { GeoWsServer } from '../gateway/geo-ws.server.js';

/**
 * Liveness and readiness (`/healthz`, `/readyz`), for load balancers and for clients
 * probing each region's RTT: CORS is open so a page served by one region can probe all.
 */
@Controller()
export class GeoHealthController {
  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    private readonly server: GeoWsServer,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  @Header('Access-Control-Allow-Origin', '*')
  @Header('Cache-Control', 'no-store')
  healthz(): { status: 'ok'; region: string } {
    return { status: 'ok', region: this.options.region };
  }

  /** Readiness: the transport is connected and the server is not draining (503 otherwise). */
  @Get('readyz')
  @HttpCode(HttpStatus.OK)
  @Header('Access-Control-Allow-Origin', '*')
  @Header('Cache-Control', 'no-store')
  readyz(@Res({ passthrough: true }) response: { status(code: number): unknown }): {
    ready: boolean;
    region: string;
    draining: boolean;
    connections: number;
  } {
    const ready = this.server.isReady();
    if (!ready) response.status(HttpStatus.SERVICE_UNAVAILABLE);
    return { ready, region: this.options.region, draining: this.server.isDraining, connections: this.server.connectionCount };
  }
}
