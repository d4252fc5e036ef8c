import { Module, type DynamicModule } from '@nestjs/common';
import { GeoWsModule, jwtAuthenticator, type GeoTransportFactory } from '@geo-ws/nest';
import { ChatGateway } from './chat/chat.gateway.js';
import { DEMO_TOKEN_LIFETIME_S, type RegionConfig } from './config.js';
import { DEMO_AUTH, DemoTokenController } from './demo-auth/demo-token.controller.js';

/** The region a room's name starts with (`eu:support` → eu), if it names one of the regions. */
function namedRegion(room: string, { regions }: { regions: readonly string[] }): string | undefined {
  const prefix = room.split(':', 1)[0];
  return room.includes(':') && regions.includes(prefix) ? prefix : undefined;
}

/** The chat app of one region. */
@Module({})
export class ChatModule {
  static forRegion(config: RegionConfig, transport: GeoTransportFactory): DynamicModule {
    const { auth } = config;
    const demo = auth.mode === 'demo';
    return {
      module: ChatModule,
      imports: [
        GeoWsModule.forRoot({
          region: config.region,
          regions: config.regions,
          transport,
          // One token authority for every region: the demo's shared secret, or yours.
          authenticate: jwtAuthenticator(
            auth.mode === 'jwt'
              ? { issuer: auth.issuer, audience: auth.audience, ...(auth.jwksUrl ? { jwksUrl: auth.jwksUrl } : { secret: auth.secret! }) }
              : // The demo accepts its own 10-minute tokens only: a self-signed long-lived one is refused.
                { issuer: auth.issuer, audience: auth.audience, secret: auth.secret, maxTokenLifetimeSec: DEMO_TOKEN_LIFETIME_S },
          ),
          // By default the regions' own origins (where the page is served): GEO_ALLOWED_ORIGINS.
          allowedOrigins: config.allowedOrigins,
          drainGraceMs: config.drainGraceMs,
          ...(config.maxBufferedBytes === undefined ? {} : { limits: { maxBufferedBytes: config.maxBufferedBytes } }),
          ...(config.metrics ? { metrics: true } : {}),
          ...(config.compressionThresholdBytes === undefined ? {} : { compression: { thresholdBytes: config.compressionThresholdBytes } }),
          // GEO_PLACEMENT=auto: every room's log follows its traffic.
          ...(config.homeMoves ? { placement: () => 'auto' as const, homeMoves: { windowMs: config.homeMoves.windowMs } } : {}),
          // GEO_PLACEMENT=named: "eu:support" lives in eu from its first join; other rooms where first published.
          ...(config.namedPlacement ? { placement: namedRegion } : {}),
        }),
      ],
      controllers: demo ? [DemoTokenController] : [],
      providers: [ChatGateway, ...(demo ? [{ provide: DEMO_AUTH, useValue: { ...auth, regions: Object.keys(config.regions) } }] : [])],
    };
  }
}
