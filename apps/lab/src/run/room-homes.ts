import type { RegionTarget } from '../load/load.types.js';

/** The longest wait for one instance's answer, body included. */
const ANSWER_TIMEOUT_MS = 2000;
/** Questions in flight at once: thousands of rooms must not become a burst on the regions. */
const CONCURRENCY = 16;

/**
 * Every room's home region (`null`: not placed yet) and the home's term (1 for the first
 * home, one more per move; only rooms whose answer had one), or why the server did not
 * report them.
 */
export type RoomHomes = { homes: Record<string, string | null>; terms: Record<string, number> } | { notReported: string };

/** One room's answer: its home and, from servers that say, the home's term. */
interface HomeAnswer {
  home: string | null;
  term?: number;
}

/**
 * Asks the regions where each room's log lives (`GET /geo/rooms/:room`), after the load:
 * room i asks `targetsOf(room, i)` in order, moving on only when a target gives no answer
 * (a region still down). A 404 means the endpoint is switched off or the server predates
 * it: nothing more is asked. Homes are reported for every room or not at all.
 */
export async function askRoomHomes(
  rooms: string[],
  targetsOf: (room: string, index: number) => RegionTarget[],
  { timeoutMs = ANSWER_TIMEOUT_MS, concurrency = CONCURRENCY } = {},
): Promise<RoomHomes> {
  // By index, so the report lists the rooms in order whatever order the answers came in.
  const answers: HomeAnswer[] = [];
  let notReported: string | undefined;
  let next = 0;
  const asker = async (): Promise<void> => {
    while (notReported === undefined && next < rooms.length) {
      const index = next++;
      const room = rooms[index];
      const answer = await askOne(room, targetsOf(room, index), timeoutMs);
      if (typeof answer === 'string') notReported ??= answer;
      else answers[index] = answer;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, rooms.length) }, asker));
  if (notReported !== undefined) return { notReported };
  const terms = rooms.flatMap((room, i) => (answers[i].term === undefined ? [] : [[room, answers[i].term] as const]));
  return { homes: Object.fromEntries(rooms.map((room, i) => [room, answers[i].home])), terms: Object.fromEntries(terms) };
}

/** One room's home from the first target that answers, or in words why none did. */
async function askOne(room: string, targets: RegionTarget[], timeoutMs: number): Promise<HomeAnswer | string> {
  const failures: string[] = [];
  for (const target of targets) {
    try {
      const response = await fetch(`${target.httpUrl}/geo/rooms/${encodeURIComponent(room)}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (response.status === 404) {
        await response.body?.cancel();
        return `${target.region} answered 404 for ${room}`;
      }
      if (!response.ok) {
        await response.body?.cancel();
        failures.push(`${target.region}: HTTP ${response.status}`);
        continue;
      }
      const body: unknown = await response.json();
      if (isHomeAnswer(body)) return typeof body.term === 'number' ? { home: body.home, term: body.term } : { home: body.home };
      failures.push(`${target.region}: unexpected answer ${JSON.stringify(body).slice(0, 80)}`);
    } catch (error) {
      failures.push(`${target.region}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return `no answer for ${room} (${failures.join('; ') || 'no target'})`;
}

function isHomeAnswer(body: unknown): body is { home: string | null; term?: unknown } {
  if (typeof body !== 'object' || body === null || !('home' in body)) return false;
  return typeof body.home === 'string' || body.home === null;
}
