// Test support for the client's specs; not part of the package (excluded from its build).
import type { GeoEnvelope } from '../protocol.js';

/**
 * The room logs the fake regions of one test share, as regions share their broker: seq is
 * the index in the log + 1; `epoch` names the log's incarnation.
 */
export class FakeLogs {
  readonly regions = new Set<{ deliver(event: GeoEnvelope): void }>();
  private readonly logs = new Map<string, GeoEnvelope[]>();
  private readonly epochs = new Map<string, string>();
  /** Events at or below this seq were removed by retention. */
  private readonly trimmed = new Map<string, number>();

  log(room: string): GeoEnvelope[] {
    let log = this.logs.get(room);
    if (!log) this.logs.set(room, (log = []));
    return log;
  }

  epoch(room: string): string {
    return this.epochs.get(room) ?? 'e1';
  }

  trimmedTo(room: string): number {
    return this.trimmed.get(room) ?? 0;
  }

  /** The room's log is lost and starts over as another incarnation. */
  reset(room: string, epoch: string): void {
    this.logs.set(room, []);
    this.epochs.set(room, epoch);
    this.trimmed.delete(room);
  }

  /** Retention removes the events up to `seq`. */
  trim(room: string, seq: number): void {
    this.trimmed.set(room, seq);
  }

  /** Appends an event and delivers it to every connection of every region that joined the room. */
  append(room: string, envelope: Omit<GeoEnvelope, 'seq' | 'room_id'>): GeoEnvelope {
    const log = this.log(room);
    const stored: GeoEnvelope = { ...envelope, room_id: room, seq: log.length + 1 };
    log.push(stored);
    for (const region of this.regions) region.deliver(stored);
    return stored;
  }
}
