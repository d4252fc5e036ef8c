import { describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory, RouterModule } from '@nestjs/core';
import {
  GeoConfigError,
  GeoMemoryNetwork,
  GeoSubscribe,
  GeoWsModule,
  memoryTransport,
  type GeoTransport,
  type GeoTransportFactory,
  type GeoWsModuleOptions,
} from '@geo-ws/nest';

const regions = { eu: 'http://127.0.0.1:3002', us: 'http://127.0.0.1:3003' };

/** Boots an app with these options (and providers) and returns the boot error, if any. */
async function bootError(options: Partial<GeoWsModuleOptions>, providers: any[] = []): Promise<Error | undefined> {
  @Module({ imports: [GeoWsModule.forRoot({ region: 'eu', regions, transport: memoryTransport(), ...options })], providers })
  class AppModule {}
  try {
    const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
    await app.init();
    await app.close();
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

describe('GeoWsModule options: misconfiguration fails at boot with a message that says what to fix', () => {
  it('placement on a transport that keeps every global log in one place', async () => {
    const error = await bootError({ transport: memoryTransport({ network: new GeoMemoryNetwork({ home: 'eu' }) }), placement: () => 'eu' });
    expect(error).toBeInstanceOf(GeoConfigError);
    expect(error?.message).toContain(
      'placement needs a transport that homes rooms one by one (memoryTransport, or natsTransport({ roomHomes: true }))',
    );
  });

  it.each([
    ['an unknown region', { region: 'mars' }, /unknown region "mars": set region to one of eu, us/],
    ['no region at all', { region: undefined }, /unknown region undefined/],
    ['no transport', { transport: undefined }, /no transport: set transport, e\.g\. transport: memoryTransport\(\)/],
    ['an empty directory', { regions: {} }, /regions is empty/],
    [
      'a region URL that is not a URL',
      { regions: { eu: 'eu.example.com', us: regions.us } },
      /regions\.eu must be an absolute http\(s\) URL/,
    ],
    ['a region URL with another scheme', { regions: { eu: 'ftp://eu.example.com', us: regions.us } }, /regions\.eu must use http or https/],
    ['a bad region name', { region: 'EU', regions: { EU: 'http://a' } }, /region name "EU" must be lower-case/],
    ['a dedup window under two minutes', { log: { dedupWindowMs: 1000 } }, /log\.dedupWindowMs must be at least 120000/],
    ['a zero payload limit', { limits: { maxPayloadBytes: 0 } }, /limits\.maxPayloadBytes must be a positive integer/],
    ['a path without a slash', { path: 'ws' }, /path must start with "\/"/],
  ])('%s', async (_label, options, message) => {
    const error = await bootError(options);
    expect(error).toBeInstanceOf(GeoConfigError);
    expect(error?.message).toMatch(message);
  });

  it('two handlers for one event', async () => {
    @Injectable()
    class A {
      @GeoSubscribe('dup.event') a() {}
    }
    @Injectable()
    class B {
      @GeoSubscribe('dup.event') b() {}
    }
    const error = await bootError({}, [A, B]);
    expect(error?.message).toMatch(/event "dup\.event" has two handlers \(A\.a and B\.b\); keep one/);
  });

  it('a reserved or invalid event name', async () => {
    @Injectable()
    class Reserved {
      @GeoSubscribe('geo.join') hijack() {}
    }
    @Injectable()
    class Invalid {
      @GeoSubscribe('Bad Name') bad() {}
    }
    expect((await bootError({}, [Reserved]))?.message).toMatch(/names starting with "geo\." are reserved/);
    expect((await bootError({}, [Invalid]))?.message).toMatch(/event names start with a lower-case letter/);
  });

  it('@GeoSubscribe regions that are not in the directory', async () => {
    @Injectable()
    class Residency {
      @GeoSubscribe('eu.only', { regions: ['eu', 'mars'] }) handle() {}
    }
    expect((await bootError({}, [Residency]))?.message).toMatch(/regions mars are not in the region directory \(eu, us\)/);
  });

  it('handlers on useValue and useFactory providers are discovered too', async () => {
    class ValueGateway {
      @GeoSubscribe('from.value') handle() {}
    }
    const error = await bootError({}, [
      { provide: 'VALUE_GATEWAY', useValue: new ValueGateway() },
      { provide: 'FACTORY_GATEWAY', useFactory: () => new ValueGateway() },
    ]);
    // Two instances of one class both register 'from.value': proof both were found.
    expect(error?.message).toMatch(/event "from\.value" has two handlers/);
  });

  it('forRootAsync resolves options from a factory, and validates them the same way', async () => {
    @Module({
      imports: [GeoWsModule.forRootAsync({ useFactory: async () => ({ region: 'nowhere', regions, transport: memoryTransport() }) })],
    })
    class AsyncModule {}
    const failing = await NestFactory.create(AsyncModule, { logger: false, abortOnError: false }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failing?.message).toMatch(/unknown region "nowhere"/);

    @Module({ imports: [GeoWsModule.forRootAsync({ useFactory: () => ({ region: 'us', regions, transport: memoryTransport() }) })] })
    class GoodAsyncModule {}
    const app = await NestFactory.create(GoodAsyncModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address();
    const body = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
    expect(body).toEqual({ status: 'ok', region: 'us' });
    await app.close();
  });

  it('endpoints: false leaves out the HTTP endpoints; RouterModule re-paths them', async () => {
    const serve = async (module: object) => {
      const app = await NestFactory.create(module as never, { logger: false });
      await app.listen(0, '127.0.0.1');
      const { port } = app.getHttpServer().address();
      const status = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
      return { app, status };
    };

    @Module({ imports: [GeoWsModule.forRoot({ region: 'eu', regions, transport: memoryTransport(), endpoints: false })] })
    class WithoutEndpoints {}
    const without = await serve(WithoutEndpoints);
    expect([await without.status('/healthz'), await without.status('/readyz'), await without.status('/geo/regions')]).toEqual([
      404, 404, 404,
    ]);
    await without.app.close();

    @Module({
      imports: [
        GeoWsModule.forRoot({ region: 'eu', regions, transport: memoryTransport() }),
        RouterModule.register([{ path: 'ops', module: GeoWsModule }]),
      ],
    })
    class Repathed {}
    const repathed = await serve(Repathed);
    expect([await repathed.status('/ops/healthz'), await repathed.status('/ops/geo/regions'), await repathed.status('/healthz')]).toEqual([
      200, 200, 404,
    ]);
    await repathed.app.close();
  });

  it('a transport that cannot connect fails the boot, naming the transport', async () => {
    const refusing: GeoTransportFactory = (context) => {
      const transport = memoryTransport()(context) as GeoTransport;
      transport.connect = async () => {
        throw new Error('connection refused');
      };
      return transport;
    };
    const error = await bootError({ transport: refusing });
    expect(error?.message).toMatch(/GeoWsModule: the memory transport could not connect: connection refused/);
  });
});
