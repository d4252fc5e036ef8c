import { publisherShift } from '../run/client-plan.js';
import type { LabOptions } from './lab-options.js';
import { numberKnob, stringKnob, type FaultStep, type PublisherShift, type Scenario } from './scenario.js';

const lastRegion = (options: LabOptions): string => options.regions[options.regions.length - 1];

/** `a-b` → [a, b], checked against the deployment's regions. */
function linkOf(options: LabOptions): [string, string] {
  // The first and the last region: a link every topology uses (NATS gateways, Redis replication from the first region's primary).
  const link = stringKnob(options, 'link', `${options.regions[0]}-${lastRegion(options)}`);
  const [a, b] = link.split('-');
  for (const region of [a, b]) {
    if (!options.regions.includes(region)) throw new Error(`--link ${link}: "${region}" is not one of ${options.regions.join(', ')}`);
  }
  return [a, b];
}

function regionOf(options: LabOptions): string {
  const region = stringKnob(options, 'region', lastRegion(options));
  if (!options.regions.includes(region)) throw new Error(`--region ${region} is not one of ${options.regions.join(', ')}`);
  return region;
}

const steadyKnobs = [
  {
    flag: 'placement',
    description:
      'with --affinity, where geo-ws homes each room: named (rooms are named <region>:room-N and placed in that region at their first join) or first-append (where its first event is published)',
    default: 'named',
  },
];

/** How geo-ws places the rooms of a steady run: only regional rooms (`--affinity`) on a broker that homes rooms one by one have a choice. */
function steadyPlacement(options: LabOptions): 'named' | 'first-append' | undefined {
  if (options.affinity === undefined || options.broker === 'redis') return undefined;
  const placement = stringKnob(options, 'placement', 'named');
  if (placement !== 'named' && placement !== 'first-append')
    throw new Error(`--placement ${placement}: steady takes named or first-append`);
  return placement;
}

const steady: Scenario = {
  name: 'steady',
  summary: 'every region up, every link at its distance: the baseline',
  defaults: {},
  knobs: steadyKnobs,
  env: (options): Record<string, string> => (steadyPlacement(options) === 'named' ? { GEO_PLACEMENT: 'named' } : {}),
  note(options) {
    if (steadyPlacement(options) !== 'named') return undefined;
    return (
      'geo-ws placed each room in its room region at its first join (GEO_PLACEMENT=named; rooms named <region>:room-N). ' +
      "--placement first-append leaves it to each room's first event, which then waits a round trip to the region holding the room homes."
    );
  },
  validate: (options) => void steadyPlacement(options),
  steps: () => [],
};

/** `region-down --brokers`: the region's broker nodes go with it. */
function withBrokers(options: LabOptions): boolean {
  return options.scenario.brokers === true;
}

/** `region-down --mode`: kill (SIGKILL) or stall (black hole). */
function regionDownMode(options: LabOptions): 'kill' | 'stall' {
  const mode = stringKnob(options, 'mode', 'kill');
  if (mode !== 'kill' && mode !== 'stall') throw new Error(`--mode ${mode}: region-down takes kill or stall`);
  return mode;
}

const regionDown: Scenario = {
  name: 'region-down',
  summary:
    'SIGKILL every process of one region mid-run (or black-hole it: --mode stall); its clients fail over and resume; optionally bring it back',
  defaults: {},
  knobs: [
    { flag: 'region', description: 'the region to kill', default: 'the last region' },
    { flag: 'kill-at', description: 'seconds after publishing starts', default: 6 },
    { flag: 'restart-after', description: 'seconds until the region starts again, or its stall ends (0: it stays down)', default: 8 },
    {
      flag: 'mode',
      description:
        'kill (SIGKILL its servers) or stall (every client path into the region black-holed: processes and sockets stay, nothing gets through, no FIN, no RST)',
      default: 'kill',
    },
    {
      flag: 'brokers',
      description:
        "kill the region's broker nodes with it (NATS: its cluster), and bring them back with it: its rooms are taken over by the surviving regions",
      default: false,
    },
  ],
  homeClientLinks: (options) => regionDownMode(options) === 'stall',
  validate(options) {
    if (withBrokers(options) && regionDownMode(options) === 'stall') throw new Error('--brokers goes with --mode kill');
    if (withBrokers(options) && options.broker === 'redis' && options.impls.includes('geo'))
      throw new Error('--brokers: takeovers are built on NATS with room homes; give --broker nats-supercluster');
  },
  brokersKilledAtS(options) {
    return withBrokers(options) ? numberKnob(options, this.knobs, 'kill-at') : undefined;
  },
  steps(options) {
    const region = regionOf(options);
    const killAt = numberKnob(options, this.knobs, 'kill-at');
    const restartAfter = numberKnob(options, this.knobs, 'restart-after');
    const stall = regionDownMode(options) === 'stall';
    const brokers = withBrokers(options);
    const steps: FaultStep[] = [
      stall
        ? { atS: killAt, label: `stall region ${region}`, run: ({ deployment }) => deployment.stallRegion(region) }
        : brokers
          ? {
              atS: killAt,
              label: `SIGKILL region ${region} and its brokers`,
              run: async ({ deployment }) => {
                await Promise.all([deployment.killRegion(region), deployment.killBroker(region)]);
              },
            }
          : { atS: killAt, label: `SIGKILL region ${region}`, run: ({ deployment }) => deployment.killRegion(region) },
    ];
    if (restartAfter > 0) {
      steps.push({
        atS: killAt + restartAfter,
        label: `region ${region} back${brokers ? ' with its brokers' : ''}`,
        run: async ({ deployment }) => {
          if (stall) return deployment.healRegion(region);
          if (brokers) await deployment.restartBroker(region);
          return deployment.startRegion(region);
        },
      });
    }
    return steps;
  },
};

const drain: Scenario = {
  name: 'drain',
  summary: 'rolling SIGTERM restart of every instance of one region (a deploy): clients are told where to go and resume',
  defaults: { instances: 2 },
  knobs: [
    { flag: 'region', description: 'the region to restart', default: 'the last region' },
    { flag: 'at', description: 'seconds after publishing starts', default: 5 },
  ],
  steps(options) {
    const region = regionOf(options);
    return [
      {
        atS: numberKnob(options, this.knobs, 'at'),
        label: `rolling restart of ${region}`,
        run: ({ deployment }) => deployment.drainRegion(region),
      },
    ];
  },
};

const brokerDown: Scenario = {
  name: 'broker-down',
  summary: 'SIGKILL a broker node (NATS: one node of a stretched R3 cluster; Redis: the primary or a replica), then restart it',
  defaults: { broker: 'nats-stretched' },
  knobs: [
    {
      flag: 'target',
      description:
        'NATS: the region whose node dies; Redis: a region whose replica dies, or primary (no Sentinel: writes stop until it is back, and it comes back empty, so the logs restart and clients are told recovered: false)',
      default: 'the second region / the last region',
    },
    { flag: 'kill-at', description: 'seconds after publishing starts', default: 5 },
    { flag: 'restart-after', description: 'seconds until the node starts again (0: it stays down)', default: 8 },
  ],
  steps(options) {
    const target = stringKnob(
      options,
      'target',
      options.broker === 'redis' ? lastRegion(options) : (options.regions[1] ?? options.regions[0]),
    );
    const killAt = numberKnob(options, this.knobs, 'kill-at');
    const restartAfter = numberKnob(options, this.knobs, 'restart-after');
    const steps: FaultStep[] = [
      {
        atS: killAt,
        label: `SIGKILL broker ${target}`,
        run: async ({ deployment }) => {
          await deployment.killBroker(target);
        },
      },
    ];
    if (restartAfter > 0) {
      steps.push({ atS: killAt + restartAfter, label: `broker ${target} back`, run: ({ deployment }) => deployment.restartBroker(target) });
    }
    return steps;
  },
};

const partition: Scenario = {
  name: 'partition',
  summary: 'cut every link between two regions (brokers and clients), then heal it',
  defaults: {},
  knobs: [
    { flag: 'link', description: 'the two regions to separate, a-b', default: 'first-last region' },
    { flag: 'cut-at', description: 'seconds after publishing starts', default: 5 },
    { flag: 'heal-after', description: 'seconds until the link heals (0: never)', default: 8 },
    { flag: 'mode', description: 'cut (reset connections) or stall (black hole)', default: 'cut' },
  ],
  steps(options) {
    const [a, b] = linkOf(options);
    const cutAt = numberKnob(options, this.knobs, 'cut-at');
    const healAfter = numberKnob(options, this.knobs, 'heal-after');
    const stall = stringKnob(options, 'mode', 'cut') === 'stall';
    const steps: FaultStep[] = [
      {
        atS: cutAt,
        label: `${stall ? 'stall' : 'cut'} ${a}–${b}`,
        run: ({ deployment }) => (stall ? deployment.stallLink(a, b) : deployment.cutLink(a, b)),
      },
    ];
    if (healAfter > 0) steps.push({ atS: cutAt + healAfter, label: `heal ${a}–${b}`, run: ({ deployment }) => deployment.healLink(a, b) });
    return steps;
  },
};

const lossy: Scenario = {
  name: 'lossy',
  summary: 'every inter-region link delayed, jittered and losing packets for the whole run',
  defaults: { lossPercent: 1, jitterMs: 10 },
  knobs: [],
  steps: () => [],
};

const slowConsumer: Scenario = {
  name: 'slow-consumer',
  summary: 'some clients stop reading their sockets under heavy traffic; they are cut off and resume without loss',
  // Busy rooms (100 msg/s of 480 bytes: 48 KB/s per member) and a 64 KiB limit instead of
  // 8 MiB, so a paused reader passes it within the pause despite the kernel's socket
  // buffers, while the machine keeps up with the rest (10k deliveries/s). Many publishers at
  // 5/s each: the SDK keeps one publish in flight, so one publisher to a log in another
  // region sends at most one per round trip.
  defaults: { clients: 100, roomSize: 50, publishersPerRoom: 20, rate: 5, payloadBytes: 480, duration: 45 },
  env: () => ({ GEO_MAX_BUFFERED_BYTES: String(64 * 1024) }),
  knobs: [
    { flag: 'share', description: 'share of the non-publishing clients that stop reading (0..1)', default: 0.1 },
    { flag: 'at', description: 'seconds after publishing starts', default: 3 },
    { flag: 'pause', description: 'seconds they do not read', default: 35 },
  ],
  steps(options) {
    const share = numberKnob(options, this.knobs, 'share');
    const pause = numberKnob(options, this.knobs, 'pause');
    return [
      {
        atS: numberKnob(options, this.knobs, 'at'),
        label: `${Math.round(share * 100)}% of clients stop reading for ${pause} s`,
        run: ({ clients, pauseReading }) => {
          // Every n-th reader, so slow consumers sit in every room and region. Publishers keep
          // reading: a publisher that reads no acks stops its room's traffic (one publish in flight).
          const every = Math.max(1, Math.round(1 / share));
          const readers = clients.filter((client) => client.publishTo.length === 0);
          pauseReading(
            readers.filter((_, i) => i % every === every - 1).map((client) => client.id),
            pause * 1000,
          );
        },
      },
    ];
  },
};

const homeMoveKnobs = [
  { flag: 'move-at', description: "seconds after publishing starts when each room's publishers move to the next region", default: 10 },
  {
    flag: 'move-window',
    description:
      'seconds of traffic the servers weigh to move a room\'s log (GEO_HOME_MOVE_WINDOW_MS); the report\'s "during the move" is [move-at, move-at + 2 × this]',
    default: 10,
  },
];

/** `home-move`: when and for how long the publishers move, and who hands over to whom. */
function homeMoveShift(options: LabOptions): PublisherShift {
  const atS = numberKnob(options, homeMoveKnobs, 'move-at');
  const windowS = numberKnob(options, homeMoveKnobs, 'move-window');
  if (!(windowS > 0)) throw new Error(`--move-window ${windowS}: expected seconds > 0`);
  if (!(atS >= 0 && atS < options.duration))
    throw new Error(`--move-at ${atS}: expected seconds from 0 to --duration (${options.duration})`);
  return { atS, duringS: 2 * windowS, rooms: publisherShift(options) };
}

/** `asia → eu, eu → us, us → asia`: each room region once, in the order of the rooms. */
function moveNames(shift: PublisherShift): string {
  return [...new Set(shift.rooms.map((room) => `${room.from} → ${room.to}`))].join(', ');
}

const homeMove: Scenario = {
  name: 'home-move',
  summary:
    "follow the sun: regional rooms whose publishers move to the next region mid-run; with GEO_PLACEMENT=auto each room's log should follow its traffic",
  // 50 s after the shift: the servers move a log once most of a window's events come from another region.
  defaults: { affinity: 0.8, duration: 60 },
  knobs: homeMoveKnobs,
  env: (options) => ({
    GEO_PLACEMENT: 'auto',
    GEO_HOME_MOVE_WINDOW_MS: String(Math.round(numberKnob(options, homeMoveKnobs, 'move-window') * 1000)),
  }),
  validate(options) {
    // The sample app refuses GEO_PLACEMENT=auto on Redis: its logs live on the primary and cannot move.
    if (options.impls.includes('geo') && options.broker === 'redis')
      throw new Error(
        'home-move: room logs move between regions only on NATS with room homes: give --broker nats-supercluster or nats-stretched',
      );
    homeMoveShift(options);
  },
  publisherShift: homeMoveShift,
  steps(options) {
    const shift = homeMoveShift(options);
    const before = shift.rooms.flatMap((room) => room.before);
    const after = shift.rooms.flatMap((room) => room.after);
    return [
      {
        atS: shift.atS,
        label: `publishers move to the next region (${moveNames(shift)})`,
        // Off, then on: each publisher keeps the run's rate, so each room keeps its traffic.
        run: ({ setPublishing }) => {
          setPublishing(before, false);
          setPublishing(after, true);
        },
      },
    ];
  },
};

/** Every scenario, in the order `--help` lists them. */
export const SCENARIOS: Scenario[] = [steady, regionDown, drain, brokerDown, partition, lossy, slowConsumer, homeMove];
