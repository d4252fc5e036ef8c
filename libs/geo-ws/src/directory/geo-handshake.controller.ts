import { Controller, Get, Inject, Options, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { GeoWsServer } from '../gateway/geo-ws.server.js';
import { GEO_WS_RESOLVED_OPTIONS } from '../options/geo-ws.tokens.js';
import type { ResolvedGeoWsOptions } from '../options/geo-ws-options.interface.js';

/**
 * The handshake check, `GET /geo/handshake`: what the WebSocket upgrade of this request
 * would get, for clients whose WebSocket cannot read the HTTP status of a refused upgrade
 * (browsers, undici): `204` (it would be accepted), or `401`/`403`/`503` with the JSON body
 * `{ code, message }` the upgrade refusal carries. The decision is the upgrade's own
 * (`UpgradeHandler.check`): same `Origin` allowlist, `authenticate`, revocation
 * read and region access, on the query and the token (`Authorization: Bearer`) of this
 * request, and the same cost: one check does the work of one upgrade.
 *
 * CORS: the request's `Origin` is echoed when it is allowed (`allowedOrigins`, or any when
 * unset), with `Vary: Origin`; `OPTIONS` answers the preflight the `Authorization` header
 * causes.
 */
@Controller()
export class GeoHandshakeController {
  constructor(
    @Inject(GEO_WS_RESOLVED_OPTIONS) private readonly options: ResolvedGeoWsOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly server: GeoWsServer,
  ) {}

  @Get('geo/handshake')
  async check(@Req() request: HttpRequest, @Res() response: unknown): Promise<void> {
    const adapter = this.adapterHost.httpAdapter;
    const raw = request.raw ?? (request as IncomingMessage);
    this.cors(raw, response);
    adapter.setHeader(response, 'Cache-Control', 'no-store');
    const upgrades = this.server.upgradeHandler;
    if (!upgrades) {
      adapter.reply(response, { code: 'UNAVAILABLE', message: 'this region is starting; try again' }, 503);
      return;
    }
    // The URL the authenticator sees at the upgrade: the WebSocket path, this query.
    const url = new URL(raw.url ?? '/', 'http://localhost');
    url.pathname = upgrades.path;
    const verdict = await upgrades.check(raw, url);
    if (verdict.accepted) {
      adapter.status(response, 204);
      adapter.end(response);
      return;
    }
    adapter.reply(response, { code: verdict.code, message: verdict.message }, verdict.status);
  }

  /** The CORS preflight of the check (its `Authorization` header is not a simple header). */
  @Options('geo/handshake')
  preflight(@Req() request: HttpRequest, @Res() response: unknown): void {
    const adapter = this.adapterHost.httpAdapter;
    this.cors(request.raw ?? (request as IncomingMessage), response);
    adapter.setHeader(response, 'Access-Control-Allow-Methods', 'GET');
    adapter.setHeader(response, 'Access-Control-Allow-Headers', 'authorization');
    adapter.setHeader(response, 'Access-Control-Max-Age', '600');
    adapter.status(response, 204);
    adapter.end(response);
  }

  /** Allows the request's origin if the upgrade would: `allowedOrigins`, or any origin when it is unset. */
  private cors(request: IncomingMessage, response: unknown): void {
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Vary', 'Origin');
    const origin = request.headers.origin;
    if (origin && (!this.options.allowedOrigins || this.options.allowedOrigins.has(origin))) {
      adapter.setHeader(response, 'Access-Control-Allow-Origin', origin);
    }
  }
}

/** The request under Express (an `IncomingMessage`) or Fastify (`raw` is one). */
type HttpRequest = Partial<IncomingMessage> & { raw?: IncomingMessage };
