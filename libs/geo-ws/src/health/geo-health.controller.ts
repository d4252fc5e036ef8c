import { BadRequestException, Controller, Get, Header, HttpCode, HttpStatus, Inject, NotFoundException, Param, Res } from '@nestjs/common';
import { isValidRoomId } from '../envelope/envelope.rules.js';
import type { GeoPresenceMember } from '../transport/geo-state-store.interface.js';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.module-definition.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import { GeoWsServer } from '../gateway/geo-ws.server.js';

/** The region directory as served at `GET /geo/regions`. */
export interface GeoRegionDirectory {
  /** The region that answered. */
  region: string;
  regions: { name: string; url: string; wsUrl: string }[];
}

/**
 * Health and discovery endpoints. CORS is open on them so a browser page served by one
 * region can probe every region's RTT and directory.
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

  /** Who is in a room, in every region (404 when presence is off). */
  @Get('geo/presence/:room')
  @Header('Access-Control-Allow-Origin', '*')
  @Header('Cache-Control', 'no-store')
  async presence(@Param('room') room: string): Promise<{ room: string; members: GeoPresenceMember[] }> {
    if (!this.server.presence) throw new NotFoundException('presence is off: set presence: true in GeoWsModule.forRoot()');
    if (!isValidRoomId(room)) throw new BadRequestException('room must be 1-128 characters with no whitespace or control characters');
    return { room, members: await this.server.presence.list(room) };
  }

  /** The region directory, for clients choosing the nearest region and a failover order. */
  @Get('geo/regions')
  @Header('Access-Control-Allow-Origin', '*')
  regions(): GeoRegionDirectory {
    return {
      region: this.options.region,
      regions: [...this.options.regions].map(([name, endpoint]) => ({ name, url: endpoint.url, wsUrl: endpoint.wsUrl })),
    };
  }
}
