/**
 * The chat history worker: a plain Nest microservice that consumes the geo event log
 * over NATS JetStream and appends every chat message to a file. `npm run start:history`.
 * GEO_NATS_URL, GEO_NAMESPACE as for the regions; GEO_HISTORY_FILE (default .data/history.jsonl).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GeoEventsServer } from '@geo-ws/nest/microservices';
import { HISTORY_FILE, HistoryWorker } from './history/history.worker.js';

async function main(): Promise<void> {
  const servers = (process.env.GEO_NATS_URL ?? 'nats://127.0.0.1:4222').split(',')[0].replace(/^[a-z-]+=/, '');
  const namespace = process.env.GEO_NAMESPACE ?? 'chat';
  const file = process.env.GEO_HISTORY_FILE ?? '.data/history.jsonl';

  @Module({ controllers: [HistoryWorker], providers: [{ provide: HISTORY_FILE, useValue: file }] })
  class HistoryModule {}

  const app = await NestFactory.createMicroservice(HistoryModule, {
    strategy: new GeoEventsServer({ servers, namespace, durable: 'chat-history' }),
  });
  app.enableShutdownHooks();
  await app.listen();
  console.log(`history worker: chat messages of namespace "${namespace}" → ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
