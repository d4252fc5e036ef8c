import { Controller, Inject, Logger } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import type { GeoLoggedEnvelope } from '@geo-ws/nest';
import type { GeoEventContext } from '@geo-ws/nest/microservices';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Injection token of the history file's path. */
export const HISTORY_FILE = Symbol('HISTORY_FILE');

/**
 * Persists every chat message of every room to a JSON-lines file, once each: events are
 * delivered at least once, so the worker skips `event_id`s it has already written.
 */
@Controller()
export class HistoryWorker {
  private readonly logger = new Logger('HistoryWorker');
  private written: Set<string> | undefined;

  constructor(@Inject(HISTORY_FILE) private readonly file: string) {}

  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-arguments -- without it TS cannot resolve the decorator's signature (TS1241)
  @EventPattern<string>('chat.message')
  async persist(@Payload() envelope: GeoLoggedEnvelope, @Ctx() context: GeoEventContext): Promise<void> {
    const written = await this.load();
    if (written.has(envelope.event_id)) return;
    await appendFile(this.file, `${JSON.stringify(envelope)}\n`);
    written.add(envelope.event_id);
    if (context.getDeliveryCount() > 1) this.logger.log(`stored ${envelope.event_id} on delivery ${context.getDeliveryCount()}`);
  }

  private async load(): Promise<Set<string>> {
    if (this.written) return this.written;
    await mkdir(dirname(this.file), { recursive: true });
    const text = await readFile(this.file, 'utf8').catch(() => '');
    this.written = new Set(
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as GeoLoggedEnvelope).event_id),
    );
    return this.written;
  }
}
