import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { GeoTransportFactory } from '@geo-ws/nest';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatModule } from './chat.module.js';
import { demoAuthorityWarning, type RegionConfig } from './config.js';

const PUBLIC_DIR = fileURLToPath(new URL('../public', import.meta.url));
/** The client SDK's build (plain ES modules), served so the page imports it without a bundler. */
const SDK_DIR = fileURLToPath(new URL('../../../libs/geo-ws-client/dist', import.meta.url));
/** msgpackr's ES module build, for the SDK's MessagePack entry (the page maps "msgpackr" to it with an import map). */
const MSGPACKR_DIR = dirname(fileURLToPath(import.meta.resolve('msgpackr'))); // its node entry sits beside the browser one

/** Starts one region's chat app and serves the browser page at `/`. */
export async function startRegion(config: RegionConfig, transport: GeoTransportFactory): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ChatModule.forRegion(config, transport), {
    logger: config.quiet ? ['error', 'warn'] : ['error', 'warn', 'log'],
  });
  app.useStaticAssets(PUBLIC_DIR);
  app.useStaticAssets(SDK_DIR, { prefix: '/sdk/' });
  app.useStaticAssets(MSGPACKR_DIR, { prefix: '/vendor/msgpackr/' });
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const warning = demoAuthorityWarning(config);
  if (warning) new Logger('ChatAuth').warn(warning);
  return app;
}
