import type { GeoCodec } from '../codec.js';
import { GeoClientCloseCode, type Frame, type WebSocketConstructor, type WebSocketLike } from '../protocol.js';
import type { RankedRegion } from './nearest-region.js';
import { authRefusal, checkHandshake, failedUpgradeCode, readRefusal, type HttpResponse, type Refusal } from './refusals.js';

/** `WebSocket.OPEN`. */
const OPEN = 1;
/** How long closing for good waits for the server's answer to its close frame before dropping the socket (`ws` would wait 30 s). */
const CLOSE_ANSWER_WAIT_MS = 1000;

/** What a {@link RegionConnection} tells the dialer. */
export interface RegionConnectionEvents {
  /** A frame arrived (decoded; what is not a protocol frame is ignored). */
  frame(frame: Frame): void;
  /** The connection is over: the dialer lets go of it. `closed` or `refused` follows, at once or after the handshake check. */
  over(): void;
  /** It ended with `code`: the server's close code, the client's own, 1006 when lost, 4008 for an upgrade refused with 429. */
  closed(code: number): void;
  /** The region refused the token (HTTP 401 or 403). */
  refused(refusal: Refusal): void;
}

/** One connection attempt, as the dialer prepared it. */
export interface Dial {
  region: RankedRegion;
  url: URL;
  token: string | undefined;
  protocols: string[] | undefined;
  Socket: WebSocketConstructor;
  codec: GeoCodec;
  /** Abandon it (4101) without `geo.welcome` by then. */
  welcomeWaitMs: number;
  /** Aborted by `close()`: a handshake check under way stops. */
  lifetime: AbortSignal;
}

/** `ws`'s side of a socket: an EventEmitter. */
interface NodeEmitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
}

/**
 * One WebSocket to one region, from the upgrade to its end, told to the dialer once
 * (`over`, then `closed` or `refused`). It finds out why an upgrade failed: `ws` hands over
 * the HTTP answer; with browsers and undici, which cannot tell, it asks the region
 * (`GET /geo/handshake`). It owns its `geo.welcome` deadline.
 */
export class RegionConnection {
  /** When the last frame arrived (or the attempt started): the dialer's heartbeat reads it. */
  lastFrameAt: number;
  /** When the client last sent a frame on it (or the attempt started). */
  lastSentAt: number;
  /** When the last `geo.ping` was sent on it (0: none): its `geo.pong` gives the RTT. */
  pingSentAt = 0;
  /** `geo.welcome` arrived: the server reads what is sent now as this client's. */
  welcomed = false;
  private readonly socket: WebSocketLike;
  /** The dialer let go of it: nothing of it reaches the dialer any more. */
  private ended = false;
  /** The code the client closed it with, whatever the server echoes. */
  private closingWith: number | undefined;
  private readonly welcomeTimer: ReturnType<typeof setTimeout>;

  /** Throws what the WebSocket class throws (a bad URL or subprotocol). */
  constructor(
    private readonly dial: Dial,
    private readonly events: RegionConnectionEvents,
  ) {
    const socket = new dial.Socket(dial.url.toString(), dial.protocols);
    this.socket = socket;
    // undici and browsers hand binary frames over as a Blob, which cannot be read at once.
    if ('binaryType' in socket) socket.binaryType = 'arraybuffer';
    let opened = false;
    socket.onopen = () => (opened = true);
    // ws tells the HTTP status and body of a refused upgrade; browsers and undici do not.
    const emitter = socket as Partial<NodeEmitter>;
    const tellsStatus = typeof emitter.on === 'function';
    if (tellsStatus) emitter.on!('unexpected-response', (_request: unknown, response: HttpResponse) => this.refusedUpgrade(response));
    this.lastFrameAt = this.lastSentAt = Date.now();
    // A region that accepts TCP but never answers (a dead host behind a load balancer)
    // must count as a failed attempt, not hang the client.
    this.welcomeTimer = setTimeout(() => {
      if (!this.ended && !this.welcomed) this.abandon(GeoClientCloseCode.NO_WELCOME);
    }, dial.welcomeWaitMs);
    socket.onmessage = (message) => {
      if (this.ended) return;
      this.lastFrameAt = Date.now();
      let frame: Frame;
      try {
        frame = dial.codec.decode(message.data) as Frame;
      } catch {
        return; // not a protocol frame: the server sends none such
      }
      this.events.frame(frame);
    };
    socket.onclose = (event) => {
      if (!this.end()) return;
      // It failed before opening, and the class cannot say why: ask the region (once).
      if (!opened && !tellsStatus && this.closingWith === undefined) return void this.askRegion();
      this.events.closed(this.closingWith ?? event.code);
    };
    socket.onerror = () => {
      // ws: onclose follows and decides. Node's undici WebSocket (Node 20) reports a refused
      // upgrade with an error and no close: the attempt has failed.
      if (this.ended || opened || tellsStatus || this.closingWith !== undefined) return;
      this.end();
      detach(socket);
      try {
        socket.close();
      } catch {
        // already closing
      }
      void this.askRegion();
    };
  }

  get region(): RankedRegion {
    return this.dial.region;
  }

  /** The dialer let go of it (closed, abandoned, disposed): nothing of it is told any more. */
  get isOver(): boolean {
    return this.ended;
  }

  /** The socket is open (welcomed or not). */
  get socketOpen(): boolean {
    return this.socket.readyState === OPEN;
  }

  /** `geo.welcome`: no deadline any more. */
  welcome(): void {
    clearTimeout(this.welcomeTimer);
    this.welcomed = true;
  }

  /** Sends a frame if the socket is open; returns whether it was sent. */
  send(event: string, data: unknown): boolean {
    if (!this.socketOpen) return false;
    this.socket.send(this.dial.codec.encode({ event, data }));
    this.lastSentAt = Date.now();
    return true;
  }

  /** Sends a frame encoded already. */
  sendEncoded(wire: string | Uint8Array): void {
    this.socket.send(wire);
    this.lastSentAt = Date.now();
  }

  /** Closes it on the client's initiative: it is handled as `code`, whatever the server answers. */
  close(code: number, reason: string): void {
    this.closingWith = code;
    try {
      this.socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  /**
   * Gives up on a connection that stopped answering. A close handshake would wait for a
   * peer that is gone, so the socket is dropped at once and the dialer told now.
   */
  abandon(code: number): void {
    if (!this.end()) return;
    detach(this.socket);
    drop(this.socket, code);
    this.events.closed(code);
  }

  /**
   * `close()` of the client (close code 1000): nothing the server still sends matters, and
   * nothing is told to the dialer.
   */
  dispose(): void {
    this.ended = true;
    clearTimeout(this.welcomeTimer);
    const { socket } = this;
    detach(socket);
    try {
      socket.close(GeoClientCloseCode.CLOSED, 'client closed');
    } catch {
      // already closing
    }
    // ws waits 30 s for the server's answer to the close frame, and its timer holds the
    // process: a server that does not answer soon is not waited for. Unref'd, this timer
    // itself holds nothing.
    const terminate = (socket as { terminate?: () => void }).terminate;
    if (terminate) {
      const dropLater = setTimeout(() => terminate.call(socket), CLOSE_ANSWER_WAIT_MS) as { unref?: () => void };
      dropLater.unref?.();
    }
  }

  /** Ends it for the dialer, once: false if it had ended already. */
  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    clearTimeout(this.welcomeTimer);
    this.events.over();
    return true;
  }

  /**
   * A refused upgrade, as `ws` reports it (`'unexpected-response'`): reads the status and
   * the JSON body `{ code, message }`, then ends the handshake (ws leaves that to this
   * listener). 401 and 403 are refusals of the token; 429 (too many connections of this
   * user) a close with 4008 (the same region after a penalty delay); anything else (503
   * while the region drains, a proxy's 502) is a failed attempt like a lost connection.
   */
  private refusedUpgrade(response: HttpResponse): void {
    readRefusal(response, (status, body) => {
      // No close listener of this socket runs: the outcome is decided here.
      detach(this.socket);
      drop(this.socket);
      if (!this.end()) return; // abandoned (no welcome in time) or closed meanwhile
      const refusal = authRefusal(status, body);
      if (refusal) this.events.refused(refusal);
      else this.events.closed(failedUpgradeCode(status));
    });
  }

  /**
   * It failed before it opened, with a WebSocket class that tells no HTTP status (browsers,
   * undici): one `GET /geo/handshake` with the same token and query asks the region what
   * the upgrade got. 401 or 403 is a refusal of the token; 429 a close with 4008, as from
   * `ws`; anything else (204: the upgrade would pass now, 503, no answer, a 404 from a
   * region without the endpoint) is a failed attempt, as before.
   */
  private async askRegion(): Promise<void> {
    const { region, url, token, lifetime } = this.dial;
    const { refusal, status } = await checkHandshake(region.url, url, token, lifetime);
    if (refusal) this.events.refused(refusal);
    else this.events.closed(failedUpgradeCode(status));
  }
}

/**
 * Stops a socket from reaching the client. A no-op error listener stays: `ws` throws an
 * error event nobody listens to, as when a connection still opening is terminated.
 */
function detach(socket: WebSocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => undefined;
}

/** Drops a socket without waiting for a close handshake (`ws`'s `terminate()`), or closes it where it cannot (browsers). */
function drop(socket: WebSocketLike, code?: number): void {
  const terminate = (socket as { terminate?: () => void }).terminate;
  try {
    if (terminate) terminate.call(socket);
    else if (code === undefined) socket.close();
    else socket.close(code);
  } catch {
    // already closing
  }
}
