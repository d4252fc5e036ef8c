import {
  BadRequestException,
  Controller,
  Get,
  Header,
  Inject,
  NotFoundException,
  Param,
  ServiceUnavailableException,
} from '@nestjs/common';
import { GeoTransportUnavailableError } from '../errors/geo-transport-unavailable.error.js';
import { isValidRoomId } from '../envelope/envelope.rules.js';
import { GeoWsServer } from '../gateway/geo-ws.server.js';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.tokens.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';
import type { GeoPresenceMember } from '../transport/geo-state-store.interface.js';
import { GeoTransport } from '../transport/geo-transport.interface.js';
import type { GeoRoomHome } from '../transport/room-home.js';

/** A room's home as served at `GET /geo/rooms/:room`. */
export interface GeoRoomHomeAnswer {
  room: string;
  /** The region holding the room's log; `null` while it has none (nothing appended yet) or the transport does not say. */
  home: string | null;
  term: number;
  placement: GeoRoomHome['placement'];
}

/** The region directory as served at `GET /geo/regions`. */
export interface GeoRegionDirectory {
  /** The region that answered. */
  region: string;
  regions: { name: string; url: string; wsUrl: string }[];
}

/**
 * What clients ask a region about the deployment: the region directory (`/geo/regions`,
 * for choosing the nearest region and a failover order) and who is in a room
 * (`/geo/presence/:room`), and where a room's log lives (`/geo/rooms/:room`). CORS is open so a page served by one region can ask any.
 */
@Controller()
export class GeoDirectoryController {
  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    private readonly server: GeoWsServer,
    @Inject(GeoTransport) private readonly transport: GeoTransport,
  ) {}

  /** Where a global room's log lives (its home region) and the home's fencing term. */
  @Get('geo/rooms/:room')
  @Header('Access-Control-Allow-Origin', '*')
  @Header('Cache-Control', 'no-store')
  async room(@Param('room') room: string): Promise<GeoRoomHomeAnswer> {
    if (!isValidRoomId(room)) throw new BadRequestException('room must be 1-128 characters with no whitespace or control characters');
    const home = await this.transport.home(room).catch((error: unknown) => {
      if (error instanceof GeoTransportUnavailableError) throw new ServiceUnavailableException(error.message);
      throw error;
    });
    return { room, home: home.region, term: home.term, placement: home.placement };
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
