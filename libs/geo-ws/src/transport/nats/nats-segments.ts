import type { NatsLogRef, NatsRoomHome, NatsSegment } from './nats-names.js';

/**
 * Positions of a homed room span segments (one per home it had, see {@link NatsSegment}):
 * a position is `(term - 1) × SEGMENT_SPAN + stream sequence`, so every position of a
 * segment is above every position of the ones before it, whatever the two streams'
 * sequences, and the term is read off the position. The first term's positions are the
 * stream sequences themselves (what rooms homed before moves existed hold). 2^40 leaves
 * a trillion stream sequences per segment and 8,191 moves within JavaScript's safe integers.
 */
export const SEGMENT_SPAN = 2 ** 40;

/** Moves a room can make within one generation: every position stays a safe integer. */
export const MAX_TERM = Math.floor(Number.MAX_SAFE_INTEGER / SEGMENT_SPAN);

/** How many past segments a record keeps: positions from before older ones read as trimmed. */
export const MAX_PAST_SEGMENTS = 16;

export function positionOf(term: number, streamSeq: number): number {
  return (term - 1) * SEGMENT_SPAN + streamSeq;
}

export function termAt(position: number): number {
  return Math.floor(position / SEGMENT_SPAN) + 1;
}

export function streamSeqAt(position: number): number {
  return position % SEGMENT_SPAN;
}

/** The log as its segment of `term` holds it (its record's current one, or a past one), or undefined if not recorded. */
export function segmentLog(log: NatsLogRef & { home: NatsRoomHome }, term: number): (NatsLogRef & { home: NatsRoomHome }) | undefined {
  const { home } = log;
  if (term === home.term) return log;
  const past = home.past?.find((segment) => segment.term === term);
  return past ? { ...log, home: asHome(home, past) } : undefined;
}

/** The segment after `term` in the record (a past one or the current one). */
export function nextSegmentLog(log: NatsLogRef & { home: NatsRoomHome }, term: number): NatsLogRef & { home: NatsRoomHome } {
  const { home } = log;
  const next = home.past?.find((segment) => segment.term > term);
  return next ? { ...log, home: asHome(home, next) } : log;
}

/** Each past segment the record keeps, oldest first, as a log the reader takes. */
export function pastSegmentLogs(log: NatsLogRef & { home: NatsRoomHome }): (NatsLogRef & { home: NatsRoomHome })[] {
  return (log.home.past ?? []).map((segment) => ({ ...log, home: asHome(log.home, segment) }));
}

/** The oldest segment the record keeps. */
export function oldestSegmentLog(log: NatsLogRef & { home: NatsRoomHome }): NatsLogRef & { home: NatsRoomHome } {
  const oldest = log.home.past?.[0];
  return oldest ? { ...log, home: asHome(log.home, oldest) } : log;
}

/** A past segment dressed as a home: the reader and tails take it where they take the current one. */
function asHome(home: NatsRoomHome, segment: NatsSegment): NatsRoomHome {
  return {
    region: segment.region,
    term: segment.term,
    generation: home.generation,
    incarnation: segment.incarnation,
    startSeq: segment.startSeq,
    sealSeq: segment.sealSeq,
  };
}

/** The first position of a segment: every event of it comes after. */
export function segmentStart(home: NatsSegment): number {
  return positionOf(home.term, home.startSeq);
}

/** Header of the marker a move writes after a segment's last event: readers and tails stop there. */
export const SEAL_HEADER = 'Geo-Seal';
/** Header of an alias marker (see `NatsNames.aliasSubject`): the position of the event whose id it carries. */
export const ALIAS_HEADER = 'Geo-Alias';

/** The term a homed room's subject was written under (its last token is `<room>~<term>` after the first term). */
export function termOfSubject(subject: string): number {
  const token = subject.slice(subject.lastIndexOf('.') + 1);
  const mark = token.indexOf('~');
  const term = mark < 0 ? 1 : Number(token.slice(mark + 1));
  return Number.isSafeInteger(term) && term >= 1 ? term : 1;
}
