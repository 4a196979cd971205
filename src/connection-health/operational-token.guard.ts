import { createHash, timingSafeEqual } from 'node:crypto';

import {
  applyDecorators,
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  NotFoundException,
  SetMetadata,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Request, Response } from 'express';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

/** The environment variables that hold the operational endpoints' bearer tokens. */
export type OperationalTokenKey = 'METRICS_TOKEN' | 'HEALTH_TOKEN';

const TOKEN_KEY = 'ops:token-key';

/**
 * An operational endpoint whose answer names internals (organization ids, token expiries, key ids):
 * with its token configured it needs `Authorization: Bearer <token>` (401 otherwise, any
 * environment); without one it is open outside production and absent (404) in production.
 */
export const RequiresOperationalToken = (key: OperationalTokenKey): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(TOKEN_KEY, key), UseGuards(OperationalTokenGuard));

/** Whether the endpoint guarded by `key` is served at all (for start-up messages). */
export function operationalEndpointServed(config: AppConfig, key: OperationalTokenKey): boolean {
  return !config.isProduction || !!config.env[key];
}

@Injectable()
export class OperationalTokenGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const key = this.reflector.getAllAndOverride<OperationalTokenKey>(TOKEN_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    const token = this.config.env[key];
    if (!token) {
      if (!operationalEndpointServed(this.config, key)) throw new NotFoundException('Not Found');
      return true;
    }
    const http = context.switchToHttp();
    // RFC 7235 §2.1: the scheme is case-insensitive.
    const given = /^Bearer +(.+)$/i.exec(http.getRequest<Request>().headers.authorization ?? '')?.[1] ?? '';
    if (!sameSecret(given, token)) {
      // RFC 6750 §3: say which scheme is expected.
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="epic-connect"');
      throw new UnauthorizedException(`This endpoint needs the bearer token (${key}).`);
    }
    return true;
  }
}

/** Compares digests, so neither the content nor the length of the token shows in the timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
