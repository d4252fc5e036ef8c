import { BadRequestException, Body, Controller, ForbiddenException, Header, Inject, Post, UseGuards } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { DEMO_TOKEN_LIFETIME_S, type DemoAuthConfig } from '../config.js';
import { DEMO_AUTH } from './demo-auth.token.js';
import { DemoTokenRateLimit } from './demo-token.rate-limit.guard.js';
import { isReservedName } from './reserved-names.js';

export { DEMO_AUTH };

/**
 * DEMO ONLY: a token authority inside the sample app, so the page can log in with just a
 * name. Every region signs with the same secret, so a token from one region is valid in
 * all of them, as with a real authority. In production, tokens come from your identity
 * provider and regions verify them with its JWKS (`GEO_AUTH=jwt`).
 *
 * Refusals carry a stable `code`: 400 `INVALID_NAME`, 403 `RESERVED_NAME` (admin, root,
 * system, geo-ws..., see reserved-names.ts), 429 `RATE_LIMITED` (per client address).
 */
@Controller('demo')
@UseGuards(DemoTokenRateLimit)
export class DemoTokenController {
  constructor(@Inject(DEMO_AUTH) private readonly auth: DemoAuthConfig & { regions: string[] }) {}

  @Post('token')
  @Header('Cache-Control', 'no-store')
  async issue(@Body() body: { name?: unknown; regions?: unknown } | undefined): Promise<{ token: string; expires_at: string }> {
    const name = typeof body?.name === 'string' ? body.name.trim() : '';
    if (!/^[\w.-]{1,32}$/.test(name)) {
      throw new BadRequestException({ statusCode: 400, code: 'INVALID_NAME', message: 'name: 1-32 letters, digits, "_", "." or "-"' });
    }
    if (isReservedName(name)) {
      throw new ForbiddenException({
        statusCode: 403,
        code: 'RESERVED_NAME',
        message: `"${name}" is reserved: the demo does not hand out administrator, system or geo-ws names`,
      });
    }
    const regions = Array.isArray(body?.regions)
      ? body.regions.filter((region): region is string => this.auth.regions.includes(region as string))
      : this.auth.regions;
    const expiresAt = Math.floor(Date.now() / 1000) + DEMO_TOKEN_LIFETIME_S;
    const token = await new SignJWT({ regions, rooms: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(name)
      .setIssuer(this.auth.issuer)
      .setAudience(this.auth.audience)
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(new TextEncoder().encode(this.auth.secret));
    return { token, expires_at: new Date(expiresAt * 1000).toISOString() };
  }
}
