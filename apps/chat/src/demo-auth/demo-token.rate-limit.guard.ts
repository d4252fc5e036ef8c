import { HttpException, HttpStatus, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { DemoAuthConfig } from '../config.js';
import { AddressRateLimit } from './address-rate-limit.js';
import { DEMO_AUTH } from './demo-auth.token.js';

/**
 * Rate limit of `POST /demo/token` per client address (`GEO_DEMO_TOKENS_PER_MINUTE`,
 * default 30): 429 `{ code: 'RATE_LIMITED', message }` with `Retry-After` in seconds.
 * Every request counts, refused ones too, so names cannot be probed for free either.
 * The address is the socket's (Express `req.ip`): behind a proxy, set Express's
 * `trust proxy` so it is the client's, not the proxy's.
 *
 * Not `@nestjs/throttler`: it supports Nest 12 (peer range `^12.0.0`) but ships CommonJS
 * that `require()`s `@nestjs/common`, which is ESM-only since Nest 12; Node 20.19 loads
 * it, Jest's ESM runtime on Node 20 cannot (the in-process e2e suites import this app).
 */
@Injectable()
export class DemoTokenRateLimit implements CanActivate {
  private readonly limit: AddressRateLimit;

  constructor(@Inject(DEMO_AUTH) auth: DemoAuthConfig) {
    this.limit = new AddressRateLimit(auth.tokensPerMinute);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    const retryAfter = this.limit.take(request.ip ?? request.socket.remoteAddress ?? 'unknown');
    if (retryAfter === 0) return true;
    http.getResponse<Response>().setHeader('Retry-After', String(retryAfter));
    throw new HttpException(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        code: 'RATE_LIMITED',
        message: `too many demo tokens from this address; try again in ${retryAfter} s`,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
