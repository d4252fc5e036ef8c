import { SignJWT } from 'jose';
import WebSocket from 'ws';

/** The tests' token authority (HS256, one shared secret per suite). */
export const TEST_ISSUER = 'https://auth.geo-ws.test';
export const TEST_AUDIENCE = 'geo-chat';

/** Signs a token for `sub` as the tests' authority would: an hour of validity, a fresh `jti`. */
export function signTestToken(secret: string, sub: string, claims: { regions?: string[]; jti?: string } = {}): Promise<string> {
  const token = new SignJWT(claims.regions ? { regions: claims.regions } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('1h');
  return (claims.jti ? token.setJti(claims.jti) : token).sign(new TextEncoder().encode(secret));
}

/** The upgrade's outcome: 101, or the HTTP status and `code` of the refusal. */
export async function handshakeOutcome(
  url: string,
  options: { token?: string; origin?: string } = {},
): Promise<{ status: number; code?: string }> {
  const { status, body } = await handshakeResponse(url, options);
  return status === 101 ? { status } : { status, code: body?.code };
}

/** The upgrade's outcome in full: 101, or the refusal's status, `Retry-After` header and JSON body. */
export function handshakeResponse(
  url: string,
  options: { token?: string; origin?: string } = {},
): Promise<{ status: number; retryAfter?: string; body?: { code?: string; message?: string } }> {
  return new Promise((resolve) => {
    const protocols = ['geo-ws.v1', ...(options.token ? [`bearer.${options.token}`] : [])];
    const socket = new WebSocket(url, protocols, options.origin ? { origin: options.origin } : {});
    socket.once('open', () => {
      resolve({ status: 101 });
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          body: text ? (JSON.parse(text) as { code?: string; message?: string }) : undefined,
        }),
      );
    });
    socket.once('error', () => undefined);
  });
}
