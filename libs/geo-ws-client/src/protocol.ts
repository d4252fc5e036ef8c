/** The envelope of a room event, as every region delivers it (see docs/PROTOCOL.md). */
export interface GeoEnvelope<TData = unknown> {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  timestamp: string;
  region: string;
  /** Position in the room log (strictly increasing); `null` for ephemeral events. */
  seq: number | null;
  data: TData;
  scope?: 'regional';
}

/** A region as `GET /geo/regions` lists it. */
export interface GeoRegion {
  name: string;
  url: string;
  wsUrl: string;
}

export interface Frame {
  event: string;
  data: any;
}

export interface JoinedFrame {
  room: string;
  seq: number;
  epoch: string;
  recovered: boolean;
  scope?: 'regional';
}

export interface AckFrame {
  event_id: string;
  seq: number | null;
  duplicate?: boolean;
}

export interface ErrorFrame {
  code: string;
  message: string;
  event_id?: string;
  room?: string;
}

/** The parts of a WebSocket the client uses: the browser's `WebSocket` and `ws` both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
