import { Module, type DynamicModule } from '@nestjs/common';
import { GeoWsModule, type GeoAuthenticator, type GeoTransportFactory } from '@geo-ws/nest';
import { ChatGateway } from './chat/chat.gateway.js';
import type { RegionConfig } from './config.js';

/**
 * DEMO ONLY: the sender is whatever `?name=` the client gives. Real deployments verify
 * a token (see the security guide).
 */
const demoAuthenticate: GeoAuthenticator = ({ url }) => {
  const name = url.searchParams.get('name')?.trim();
  if (!name) return { id: `anon-${Math.random().toString(36).slice(2, 8)}` };
  return /^[\w.-]{1,32}$/.test(name) ? { id: name } : null;
};

/** The chat app of one region. */
@Module({})
export class ChatModule {
  static forRegion(config: RegionConfig, transport: GeoTransportFactory): DynamicModule {
    return {
      module: ChatModule,
      imports: [
        GeoWsModule.forRoot({
          region: config.region,
          regions: config.regions,
          transport,
          authenticate: demoAuthenticate,
          drainGraceMs: config.drainGraceMs,
        }),
      ],
      providers: [ChatGateway],
    };
  }
}
