import type { IncomingMessage } from 'node:http';
import type { GeoAuthenticator, GeoHandshake, GeoPrincipal } from './geo-principal.js';
import type { AccessPolicy } from './access-policy.js';

/**
 * Who a connection is: the bearer token of the upgrade request (or of an in-band
 * `geo.auth`), the application's authenticator, and the shared revocation list. Used at
 * the upgrade and on `geo.auth`, so both apply exactly the same rules.
 */
export class HandshakeAuth {
  constructor(
    private readonly authenticate: GeoAuthenticator,
    private readonly access: AccessPolicy,
  ) {}

  /** The principal of an upgrade request (`null`: no valid token). */
  async fromUpgrade(request: IncomingMessage, url: URL, authenticated?: (principal: GeoPrincipal) => void): Promise<GeoPrincipal | null> {
    const header = request.headers.authorization;
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
    const fromProtocol = protocols.find((protocol) => protocol.startsWith('bearer.'))?.slice('bearer.'.length);
    const token = header?.startsWith('Bearer ')
      ? header.slice(7).trim()
      : (fromProtocol ?? url.searchParams.get('access_token') ?? undefined);
    return this.verify({ request, url, token }, authenticated);
  }

  /**
   * Runs the authenticator on a token, then checks the shared revocation list;
   * `authenticated` hears of the principal in between (work that may start while the list is read).
   */
  async verify(handshake: GeoHandshake, authenticated?: (principal: GeoPrincipal) => void): Promise<GeoPrincipal | null> {
    const principal = await this.authenticate(handshake);
    if (principal && (typeof principal.id !== 'string' || principal.id.length === 0)) {
      throw new Error('authenticate() returned a principal without an id');
    }
    // A revoked token opens no connection and refreshes none: one read of the shared list
    // (handshake: HTTP 401; geo.auth: UNAUTHORIZED "the token was revoked").
    if (principal) {
      authenticated?.(principal);
      await this.access.assertNotRevoked(principal);
    }
    return principal;
  }
}
