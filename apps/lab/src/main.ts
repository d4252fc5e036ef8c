/**
 * The geo lab: `npm run lab -- <scenario> [options]`; `npm run lab -- <scenario> --help`.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { writeHtmlReport } from './report/html.js';
import { formatMarkdown } from './report/markdown.js';
import type { LabReport } from './report/report.types.js';
import { formatSummary } from './report/terminal.js';
import { DEFAULT_OPTIONS, type LabOptions } from './scenarios/lab-options.js';
import { runLab } from './run/lab-run.js';
import { SCENARIOS } from './scenarios/scenarios.js';
import type { Scenario } from './scenarios/scenario.js';
import type { Impl } from './load/load.types.js';

const IMPLS: Impl[] = ['geo', 'socketio', 'ceiling'];
const BROKERS = ['nats-supercluster', 'nats-stretched', 'redis'] as const;

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return number;
}

function nonNegative(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return number;
}

function list(value: string): string[] {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

function impls(value: string): Impl[] {
  const items = list(value);
  for (const item of items)
    if (!IMPLS.includes(item as Impl)) throw new InvalidArgumentError(`"${item}" is not one of ${IMPLS.join(', ')}`);
  return items as Impl[];
}

/** `asia-eu=80,eu-us=40` → { 'asia-eu': 80, 'eu-us': 40 }. */
function delays(value: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const entry of list(value)) {
    const match = /^([^=\s]+-[^=\s]+)=(\d+(?:\.\d+)?)$/.exec(entry);
    if (!match) throw new InvalidArgumentError(`"${entry}" is not a-b=ms (e.g. asia-eu=80)`);
    result[match[1]] = Number(match[2]);
  }
  return result;
}

function percent(value: string): number {
  const number = nonNegative(value);
  if (number > 100) throw new InvalidArgumentError('expected a percentage 0..100');
  return number;
}

/** `KEY=VALUE[,KEY=VALUE…]`: environment variables of the sample app. */
function serverEnv(value: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const match = /^(GEO_[A-Z0-9_]+)=(.*)$/.exec(pair.trim());
    if (!match) throw new InvalidArgumentError(`expected GEO_NAME=value pairs separated by commas, got "${pair}"`);
    env[match[1]] = match[2];
  }
  return env;
}

/** A share from 0 to 1 (`--affinity 0.8`). */
function fraction(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0 || number > 1)
    throw new InvalidArgumentError('expected a number from 0 to 1 (e.g. 0.8)');
  return number;
}

/** The options every scenario shares, with this scenario's defaults shown in --help. */
function addCommonOptions(command: Command, defaults: LabOptions): Command {
  const delaysText = Object.entries(defaults.delays)
    .map(([pair, ms]) => `${pair}=${ms}`)
    .join(',');
  return command
    .addOption(
      new Option('--impl <list>', 'implementations to run one after the other: geo, socketio, ceiling')
        .argParser(impls)
        .default(defaults.impls, defaults.impls.join(',')),
    )
    .addOption(new Option('--broker <kind>', "geo's broker (the peers always use Redis)").choices(BROKERS).default(defaults.broker))
    .addOption(new Option('--regions <list>', 'region names').argParser(list).default(defaults.regions, defaults.regions.join(',')))
    .option('--instances <n>', 'server processes per region', positiveInteger, defaults.instances)
    .option('--clients <n>', 'concurrent clients, spread over the regions', positiveInteger, defaults.clients)
    .option('--room-size <n>', 'members per room (rooms span every region unless --affinity)', positiveInteger, defaults.roomSize)
    .option('--publishers <n>', 'publishing members per room', positiveInteger, defaults.publishersPerRoom)
    .option(
      '--affinity <0..1>',
      "rooms with a home region: room i's region is regions[i mod n], this share of its members and its publishers live there (unset: rooms span every region)",
      fraction,
      defaults.affinity,
    )
    .option(
      '--server-env <pairs>',
      "extra environment of the geo-ws servers, e.g. GEO_NATS_ROOM_HOMES=0 (the sample app's variables, README)",
      serverEnv,
    )
    .option('--rate <n>', 'messages per second per publisher', nonNegative, defaults.rate)
    .option('--duration <s>', 'seconds of publishing', nonNegative, defaults.duration)
    .option('--payload <bytes>', 'message text size (≤ 500)', positiveInteger, defaults.payloadBytes)
    .addOption(new Option('--delays <list>', 'one-way delay between regions in ms').argParser(delays).default(defaults.delays, delaysText))
    .option('--default-delay <ms>', 'delay for region pairs not in --delays', nonNegative, defaults.defaultDelayMs)
    .option('--jitter <ms>', 'jitter added to each inter-region delay (order kept)', nonNegative, defaults.jitterMs)
    .option('--loss <percent>', 'packets dropped on inter-region links (needs network namespaces)', percent, defaults.lossPercent)
    .addOption(
      new Option('--netns <mode>', 'a network namespace per region (auto: when root with ip and nft)')
        .choices(['auto', 'on', 'off'])
        .default(defaults.netns),
    )
    .option('--workers <n>', 'load worker processes', positiveInteger, defaults.workers)
    .option('--connect-concurrency <n>', 'connections opened at once', positiveInteger, defaults.connectConcurrency)
    .option('--settle <s>', 'longest wait for the last deliveries after publishing stops', nonNegative, defaults.settle)
    .option('--json <file>', 'write the JSON report here')
    .option('--html <file>', 'write the HTML report here')
    .option('--logs <file>', 'also write every publish and client log to <file>.<impl>.json')
    .option('--quiet', 'no live progress line', false)
    .option('--cpu-prof <dir>', 'write a V8 CPU profile of each server process to <dir>/<impl>/ (open in Chrome DevTools)')
    .addOption(
      new Option(
        '--wire <codec>',
        "geo clients' frames: JSON text, MessagePack binary, or JSON with permessage-deflate (regions compress from 128 B)",
      )
        .choices(['json', 'msgpack', 'deflate'])
        .default(defaults.wire),
    );
}

interface CommonFlags {
  impl: Impl[];
  broker: LabOptions['broker'];
  regions: string[];
  instances: number;
  clients: number;
  roomSize: number;
  publishers: number;
  affinity?: number;
  serverEnv?: Record<string, string>;
  rate: number;
  duration: number;
  payload: number;
  delays: Record<string, number>;
  defaultDelay: number;
  jitter: number;
  loss: number;
  netns: LabOptions['netns'];
  workers: number;
  connectConcurrency: number;
  settle: number;
  json?: string;
  html?: string;
  logs?: string;
  quiet: boolean;
  cpuProf?: string;
  wire: LabOptions['wire'];
  [knob: string]: unknown;
}

function toOptions(scenario: Scenario, flags: CommonFlags): LabOptions {
  if (flags.payload > 500) throw new InvalidArgumentError('--payload: the sample app accepts texts up to 500 characters');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const knobs: LabOptions['scenario'] = {};
  for (const knob of scenario.knobs) {
    const value = flags[camel(knob.flag)];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') knobs[knob.flag] = value;
  }
  return {
    ...DEFAULT_OPTIONS,
    impls: flags.impl,
    broker: flags.broker,
    regions: flags.regions,
    instances: flags.instances,
    clients: flags.clients,
    roomSize: flags.roomSize,
    publishersPerRoom: Math.min(flags.publishers, flags.roomSize),
    affinity: flags.affinity,
    serverEnv: flags.serverEnv,
    rate: flags.rate,
    duration: flags.duration,
    payloadBytes: flags.payload,
    delays: flags.delays,
    defaultDelayMs: flags.defaultDelay,
    jitterMs: flags.jitter,
    lossPercent: flags.loss,
    netns: flags.netns,
    workers: flags.workers,
    connectConcurrency: flags.connectConcurrency,
    settle: flags.settle,
    scenario: knobs,
    json: flags.json ?? `lab-reports/${scenario.name}-${stamp}.json`,
    html: flags.html ?? `lab-reports/${scenario.name}-${stamp}.html`,
    logs: flags.logs,
    quiet: flags.quiet,
    cpuProf: flags.cpuProf,
    wire: flags.wire,
  };
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

const program = new Command('lab')
  .description(
    'The geo lab: regions as separate processes with their own broker nodes, latency, jitter and loss between them, faults, ' +
      'thousands of SDK clients, and a report that counts lost, duplicated and reordered messages beside Socket.IO and a bare-ws floor.',
  )
  .showHelpAfterError();

for (const scenario of SCENARIOS) {
  const defaults = { ...DEFAULT_OPTIONS, ...scenario.defaults };
  const command = addCommonOptions(program.command(scenario.name).description(scenario.summary), defaults);
  for (const knob of scenario.knobs) {
    if (typeof knob.default === 'boolean') command.option(`--${knob.flag}`, knob.description);
    else command.option(`--${knob.flag} <value>`, `${knob.description} (default: ${String(knob.default)})`);
  }
  command.action(async (flags: CommonFlags) => {
    const options = toOptions(scenario, flags);
    const report = await runLab(scenario, options);
    process.stdout.write(`${formatSummary(report)}\n`);
    process.stdout.write(`reports: ${options.json ?? ''} ${options.html ?? ''}\n`);
    const geo = report.runs.find((run) => run.impl === 'geo');
    const anomalies = geo ? Object.values<number>({ ...geo.check.anomalies }).reduce((sum, count) => sum + count, 0) : 0;
    // A geo run with anomalies is a failed run: say so with the exit code, for scripts and CI.
    process.exitCode = anomalies > 0 ? 2 : 0;
  });
}

program
  .command('render')
  .description('print a saved JSON report again: the terminal summary, or a Markdown table (--markdown); --html writes its HTML report')
  .argument('<json>', 'a report written with --json')
  .option('--markdown', 'a Markdown table instead of the terminal summary', false)
  .option('--html <file>', 'also write the HTML report here')
  .action(async (file: string, flags: { markdown: boolean; html?: string }) => {
    const report = JSON.parse(await readFile(file, 'utf8')) as LabReport;
    process.stdout.write(`${flags.markdown ? formatMarkdown(report) : formatSummary(report)}\n`);
    if (flags.html) await writeHtmlReport(report, flags.html);
  });

// Ctrl-C mid-run: exit through 'exit', where the deployment's safety net kills every process it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nlab: ${signal}, stopping every process and namespace of this run\n`);
    process.exit(130);
  });
}

// Every process, proxy and namespace of the run is stopped by now. Exit explicitly: Node's
// exit-time handle clean-up was seen to spin on a pipe of an already-killed broker child.
program.parseAsync().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`lab: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
