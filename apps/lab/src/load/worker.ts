/**
 * A load worker: a forked process that runs a share of the lab's clients. It takes a
 * {@link WorkerPlan} and commands over IPC (load.types.ts), reports `progress` once a
 * second and sends every log on `collect`. Per delivery it only parses the event number
 * from the text and pushes to four arrays.
 */
import { createClient } from './clients/create-client.js';
import { reason, type ClientSink, type LoadClient } from './clients/load-client.js';
import type { ClientLog, ClientPlan, ProgressSample, PublishLog, RoomLog, WorkerCommand, WorkerMessage, WorkerPlan } from './load.types.js';

/** Texts longer than this are refused by the sample app (`text`: 1..500 characters); every impl gets the same payload. */
const MAX_TEXT = 500;
/** A client that neither connects nor fails within this long counts as failed. */
const CONNECT_DEADLINE_MS = 60_000;
/** Event numbers: worker × this + a counter, unique in the run. */
const NUMBERS_PER_WORKER = 1e9;

const counters: ProgressSample = { connected: 0, reconnecting: 0, published: 0, acked: 0, delivered: 0, errors: 0, bytesRead: 0 };

/** One client with its log; the adapter reports into it. */
class ClientRecord implements ClientSink {
  readonly log: ClientLog;
  private readonly rooms = new Map<string, RoomLog>();
  client!: LoadClient;
  /** Between a `down` and the next `up`. */
  isDown = false;
  connected = false;
  /** Rooms it publishes to while publishing is on: the plan's, until a `set-publishing` command. */
  publishTo: string[];
  /** Its publish timers: per room, the first (delayed) publish, then the interval. */
  readonly publishTimers: NodeJS.Timeout[] = [];

  constructor(readonly plan: ClientPlan) {
    this.publishTo = [...plan.publishTo];
    this.log = { id: plan.id, home: plan.home, rooms: [], connectivity: [], gaps: 0, errors: {} };
    for (const room of plan.rooms) {
      const log: RoomLog = { room, numbers: [], seqs: [], receivedAt: [], regions: [] };
      this.rooms.set(room, log);
      this.log.rooms.push(log);
    }
  }

  message(room: string, number: number, seq: number): void {
    const log = this.rooms.get(room);
    if (!log) return;
    log.numbers.push(number);
    log.seqs.push(seq);
    log.receivedAt.push(Date.now());
    log.regions.push(this.client.region);
    counters.delivered++;
  }

  down(): void {
    if (this.isDown) return;
    this.isDown = true;
    if (this.connected) {
      counters.connected--;
      counters.reconnecting++;
    }
    this.log.connectivity.push({ at: Date.now(), kind: 'down', region: this.client.region });
  }

  up(): void {
    if (!this.isDown) return;
    this.isDown = false;
    if (this.connected) {
      counters.connected++;
      counters.reconnecting--;
    }
    this.log.connectivity.push({ at: Date.now(), kind: 'up', region: this.client.region });
  }

  error(code: string): void {
    this.log.errors[code] = (this.log.errors[code] ?? 0) + 1;
    counters.errors++;
  }

  gap(room: string): void {
    this.log.gaps++;
    (this.log.gapsTold ??= []).push({ room, at: Date.now() });
  }
}

let plan: WorkerPlan | undefined;
const records = new Map<string, ClientRecord>();
const publishes: PublishLog[] = [];
/** Between `publish-start` and `publish-stop`: clients publish only then, whatever `set-publishing` said. */
let publishing = false;
let counter = 0;
let padding = '';

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

function fatal(error: unknown): never {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: 'fatal', worker: plan?.worker ?? -1, error: text });
  console.error(`load worker ${plan?.worker ?? '?'}: ${text}`);
  // Give IPC a moment to carry the message.
  setTimeout(() => process.exit(1), 200).unref();
  throw error;
}

process.on('uncaughtException', (error) => {
  fatal(error);
});
process.on('unhandledRejection', (error) => {
  fatal(error);
});
// The lab went away: nothing to report to.
process.on('disconnect', () => shutdown(1));

function onPlan(next: WorkerPlan): void {
  plan = next;
  padding = 'x'.repeat(Math.min(MAX_TEXT, Math.max(0, plan.payloadBytes)));
  for (const clientPlan of plan.clients) {
    const record = new ClientRecord(clientPlan);
    record.client = createClient(plan.impl, { plan: clientPlan, sink: record, auth: plan.auth, wire: plan.wire });
    records.set(clientPlan.id, record);
  }
  const report = (): void => {
    let bytesRead = 0;
    for (const record of records.values()) bytesRead += record.client.bytesRead?.() ?? 0;
    send({ type: 'progress', worker: next.worker, sample: { ...counters, bytesRead } });
  };
  setInterval(report, 1000);
  // The first sample tells the lab the plan is in place.
  report();
}

async function connectAll(current: WorkerPlan): Promise<void> {
  const connectMs: number[] = [];
  const failed: { id: string; error: string }[] = [];
  const queue = [...records.values()];
  const concurrency = Math.max(1, Math.floor(current.connectConcurrency));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < queue.length) {
      const record = queue[next++];
      const started = performance.now();
      let deadline: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          record.client.connect(),
          new Promise<never>((_, reject) => (deadline = setTimeout(() => reject(new Error('connect deadline')), CONNECT_DEADLINE_MS))),
        ]);
        connectMs.push(performance.now() - started);
        record.connected = true;
        if (!record.isDown) counters.connected++;
        else counters.reconnecting++;
      } catch (error) {
        failed.push({ id: record.plan.id, error: reason(error) });
        record.client.close();
      } finally {
        clearTimeout(deadline);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, lane));
  send({ type: 'ready', worker: current.worker, connectMs, failed });
}

/** `${number}:${sentAt}:` padded to the payload size (at most {@link MAX_TEXT}). */
function payload(number: number, sentAt: number, size: number): string {
  const head = `${number}:${sentAt}:`;
  return head.length >= size ? head : head + padding.slice(0, size - head.length);
}

function publishOnce(current: WorkerPlan, record: ClientRecord, room: string): void {
  const number = current.worker * NUMBERS_PER_WORKER + ++counter;
  const sentAt = Date.now();
  const entry: PublishLog = { number, room, publisher: record.plan.id, region: record.client.region, sentAt };
  publishes.push(entry);
  counters.published++;
  record.client.publish(room, `${current.runId}-${number}`, payload(number, sentAt, Math.min(MAX_TEXT, current.payloadBytes))).then(
    (ack) => {
      entry.ackedAt = Date.now();
      if (ack.seq !== undefined) entry.ackSeq = ack.seq;
      if (ack.duplicate) entry.duplicate = true;
      counters.acked++;
    },
    (error: unknown) => {
      entry.error = error instanceof Error ? error.message : String(error);
      counters.errors++;
    },
  );
}

function startPublishing(current: WorkerPlan): void {
  publishing = true;
  for (const record of records.values()) startPublisher(current, record);
}

function stopPublishing(): void {
  publishing = false;
  for (const record of records.values()) stopPublisher(record);
}

/** `set-publishing`: these clients publish to every room they joined from now on, or stop. */
function setPublishing(current: WorkerPlan, clientIds: string[], on: boolean): void {
  for (const id of clientIds) {
    const record = records.get(id);
    if (!record) continue;
    record.publishTo = on ? [...record.plan.rooms] : [];
    startPublisher(current, record);
  }
}

/** (Re)starts one client's publish timers for its `publishTo`, while publishing is on and it is connected. */
function startPublisher(current: WorkerPlan, record: ClientRecord): void {
  stopPublisher(record);
  if (!publishing || !record.connected || current.publishRatePerSec <= 0) return;
  const intervalMs = 1000 / current.publishRatePerSec;
  for (const room of record.publishTo) {
    // A random phase per publisher: no thundering herd at each interval.
    const start = setTimeout(() => {
      publishOnce(current, record, room);
      record.publishTimers.push(setInterval(() => publishOnce(current, record, room), intervalMs));
    }, Math.random() * intervalMs);
    record.publishTimers.push(start);
  }
}

function stopPublisher(record: ClientRecord): void {
  // clearTimeout clears intervals too.
  for (const timer of record.publishTimers.splice(0)) clearTimeout(timer);
}

function collect(current: WorkerPlan): void {
  const clients = [...records.values()].map((record) => {
    const failovers = record.client.failovers?.();
    return failovers ? { ...record.log, failovers } : record.log;
  });
  send({ type: 'logs', worker: current.worker, publishes, clients });
}

function shutdown(code: number): void {
  stopPublishing();
  for (const record of records.values()) record.client.close();
  // Let the last IPC message and close frames go out.
  setTimeout(() => process.exit(code), 100).unref();
}

process.on('message', (raw: unknown) => {
  const command = raw as WorkerCommand;
  if (command.type === 'plan') return onPlan(command.plan);
  if (!plan) return fatal(new Error(`command "${command.type}" before the plan`));
  const current = plan;
  switch (command.type) {
    case 'connect':
      return void connectAll(current).catch(fatal);
    case 'publish-start':
      return startPublishing(current);
    case 'publish-stop':
      return stopPublishing();
    case 'pause-reading':
      for (const id of command.clientIds) records.get(id)?.client.pauseReading(command.ms);
      return;
    case 'set-publishing':
      return setPublishing(current, command.clientIds, command.on);
    case 'collect':
      return collect(current);
    case 'close':
      return shutdown(0);
  }
});
