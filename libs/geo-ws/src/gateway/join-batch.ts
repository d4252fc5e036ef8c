import { GeoErrorCode } from '../errors/geo-error-code.js';
import { GeoProtocolError } from '../errors/geo-protocol.error.js';
import type { TokenBucket } from '../limits/token-bucket.js';
import { isJoinBatch, type Frame, type JoinRequest } from '../protocol/frames.js';
import { GeoFrame } from '../protocol/wire.js';

/**
 * Rooms of one batch that join at the same time. Each join waits for its log's first replay
 * page; more at once would let one reconnecting client take the broker's read capacity (and
 * the instance's history-read slots) from everyone else's joins and replays.
 */
export const JOIN_BATCH_CONCURRENCY = 16;

/** `geo.join { rooms: [...] }`: the batch form (feature `join.rooms`). */
export function isJoinBatchFrame(frame: Frame): frame is Frame & { data: { rooms: unknown } } {
  return frame.event === GeoFrame.JOIN && isJoinBatch(frame.data);
}

/**
 * How many rooms of a batch join the connection's rate bucket pays for: one token per room,
 * so a batch joins no more rooms per second than single `geo.join` frames would. The frame's
 * own token (`withinRate`) pays for the first room. A batch that is refused whole (no list,
 * too long) costs one token, as any refused frame does.
 */
export function paidRooms(rooms: unknown, withinRate: boolean, bucket: TokenBucket, maxRooms: number): number {
  if (!withinRate) return 0;
  const count = Array.isArray(rooms) && rooms.length <= maxRooms ? rooms.length : 1;
  return 1 + bucket.takeUpTo(count - 1);
}

/** What a batch does with each room: the single join's steps, and its refusal. */
export interface JoinSteps {
  /** Joins one room as a single `geo.join` would; resolves once `geo.joined` is sent. */
  join(request: JoinRequest): Promise<void>;
  /** Answers one room's refusal as a single `geo.join`'s: `geo.error` with `room`. */
  refuse(request: JoinRequest, error: unknown): void;
  /** The connection closed: rooms not started yet are not joined. */
  stopped(): boolean;
}

/**
 * Runs a batch's joins, at most `concurrency` at a time, in list order. Rooms past the `paid`
 * first ones are refused `RATE_LIMITED` (each, so the client can retry each). Resolves once
 * every room is answered: the batch holds the connection's frame queue until then, so what
 * the client sent after it finds every room joined.
 */
export async function runJoinBatch(
  requests: JoinRequest[],
  paid: number,
  steps: JoinSteps,
  concurrency = JOIN_BATCH_CONCURRENCY,
): Promise<void> {
  for (const request of requests.slice(paid)) {
    if (steps.stopped()) return;
    steps.refuse(request, new GeoProtocolError(GeoErrorCode.RATE_LIMITED, `too many joins; join room "${request.room}" again later`));
  }
  const joining = requests.slice(0, paid);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < joining.length && !steps.stopped()) {
      const request = joining[next++];
      try {
        await steps.join(request);
      } catch (error) {
        steps.refuse(request, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, joining.length) }, worker));
}
