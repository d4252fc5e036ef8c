// How the client learns that a region refused its connection, and why: from the HTTP
// answer to the upgrade where the WebSocket class tells it (`ws`), else from one
// `GET /geo/handshake` with the same token and query (browsers, undici).
import { GeoCloseCode } from '../protocol.js';
import { withDeadline } from './nearest-region.js';

/** The close code a WebSocket reports when the connection ended without a close frame. */
export const ABNORMAL_CLOSURE = 1006;
/**
 * The HTTP status of an upgrade refused because the user has too many connections to the
 * region (`TOO_MANY_CONNECTIONS`): handled as a close with {@link GeoCloseCode.TOO_MANY_CONNECTIONS}.
 */
const TOO_MANY_CONNECTIONS_STATUS = 429;
/** The longest wait for the answer of the handshake check (`GET /geo/handshake`). */
const HANDSHAKE_CHECK_TIMEOUT_MS = 5000;
/** The most of a refusal's body the client reads. */
const MAX_REFUSAL_BODY = 4096;

/** A region's refusal of the token. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** The parts of Node's `http.IncomingMessage` the client reads (the SDK has no Node types). */
export interface HttpResponse {
  statusCode?: number;
  on(event: string, listener: (...args: never[]) => void): unknown;
  setEncoding?(encoding: string): unknown;
  destroy?(): unknown;
}

/**
 * A refusal of the token in an HTTP answer (of the upgrade or of the handshake check):
 * 401 or 403, with the server's code and message from its JSON body `{ code, message }`
 * when it has one. Anything else: `undefined`.
 */
export function authRefusal(status: number, body: string): Refusal | undefined {
  if (status !== 401 && status !== 403) return undefined;
  let parsed: { code?: unknown; message?: unknown } = {};
  try {
    parsed = (JSON.parse(body) as typeof parsed | null) ?? {};
  } catch {
    // not the server's JSON (a proxy's page): the status says enough
  }
  return {
    status,
    code: typeof parsed.code === 'string' && parsed.code ? parsed.code : status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN',
    message: typeof parsed.message === 'string' && parsed.message ? parsed.message : `HTTP ${status}`,
  };
}

/** The close code an upgrade that failed with this HTTP status (0: unknown) is handled as. */
export function failedUpgradeCode(status: number): number {
  return status === TOO_MANY_CONNECTIONS_STATUS ? GeoCloseCode.TOO_MANY_CONNECTIONS : ABNORMAL_CLOSURE;
}

/**
 * Reads the answer to a refused upgrade, as `ws` hands it over (`'unexpected-response'`):
 * its body (up to {@link MAX_REFUSAL_BODY} characters), then calls `done` once with the
 * status and the body, the response destroyed.
 */
export function readRefusal(response: HttpResponse, done: (status: number, body: string) => void): void {
  let body = '';
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    response.destroy?.();
    done(response.statusCode ?? 0, body);
  };
  response.on('error', () => undefined);
  response.setEncoding?.('utf8');
  response.on('data', (chunk: unknown) => {
    body += String(chunk);
    if (body.length > MAX_REFUSAL_BODY) finish();
  });
  response.on('end', finish);
  response.on('close', finish);
}

/**
 * Asks a region what an upgrade that failed before opening got: one `GET <url>/geo/handshake`
 * with the same query and token. Returns the refusal of the token (401, 403) if it was one,
 * and the status (0: no answer within {@link HANDSHAKE_CHECK_TIMEOUT_MS}, or aborted).
 */
export async function checkHandshake(
  regionUrl: string,
  wsUrl: URL,
  token: string | undefined,
  signal: AbortSignal,
): Promise<{ refusal: Refusal | undefined; status: number }> {
  let refusal: Refusal | undefined;
  let status = 0;
  try {
    refusal = await withDeadline(HANDSHAKE_CHECK_TIMEOUT_MS, signal, async (deadline) => {
      const response = await fetch(`${regionUrl}/geo/handshake${wsUrl.search}`, {
        cache: 'no-store',
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: deadline,
      });
      status = response.status;
      const body = await response.text();
      return authRefusal(response.status, body);
    });
  } catch {
    // no answer: as before, a failed attempt
  }
  return { refusal, status };
}
