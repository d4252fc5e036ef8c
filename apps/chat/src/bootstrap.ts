import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { GeoTransportFactory } from '@geo-ws/nest';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatModule } from './chat.module.js';
import { demoAuthorityWarning, type RegionConfig } from './config.js';

const PUBLIC_DIR = fileURLToPath(new URL('../public', import.meta.url));
/** The client SDK's build (plain ES modules), served so the page imports it without a bundler. */
const SDK_DIR = fileURLToPath(new URL('../../../libs/geo-ws-client/dist', import.meta.url));
/** msgpackr's ES module build, for the SDK's MessagePack entry (the page maps "msgpackr" to it with an import map). */
const MSGPACKR_DIR = dirname(fileURLToPath(import.meta.resolve('msgpackr'))); // its node entry sits beside the browser one

/**
 * Connections the kernel holds for this process while it is busy (the listen backlog). A
 * region that takes in another region's clients gets them in one burst. With Node's
 * default of 511, the lab's region-down (1,000 clients) filled the queue, and each dropped
 * SYN came back 1 or 3 s later. The kernel caps the backlog at `net.core.somaxconn`
 * (4096 by default since Linux 5.4). docs/OPERATIONS.md, "Taking in another region's
 * clients".
 */
const LISTEN_BACKLOG = 4096;

/** Starts one region's chat app and serves the browser page at `/`. */
export async function startRegion(config: RegionConfig, transport: GeoTransportFactory): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ChatModule.forRegion(config, transport), {
    logger: config.quiet ? ['error', 'warn'] : ['error', 'warn', 'log'],
  });
  app.useStaticAssets(PUBLIC_DIR);
  app.useStaticAssets(SDK_DIR, { prefix: '/sdk/' });
  app.useStaticAssets(MSGPACKR_DIR, { prefix: '/vendor/msgpackr/' });
  app.enableShutdownHooks();
  // app.listen() has no backlog parameter: init, then listen with Node's options object.
  await app.init();
  const server: Server = app.getHttpServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const warning = demoAuthorityWarning(config);
  if (warning) new Logger('ChatAuth').warn(warning);
  return app;
}
