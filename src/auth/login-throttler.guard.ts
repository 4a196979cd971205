import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard, ThrottlerLimitDetail } from '@nestjs/throttler';
import { Response } from 'express';

/**
 * The login throttle (per client IP, counted in PostgreSQL). Its 429 carries `Retry-After` in
 * seconds (RFC 6585 §4, RFC 9110 §10.2.3): the base guard names the header after the throttler
 * (`Retry-After-login`), which no client reads.
 */
@Injectable()
export class LoginThrottlerGuard extends ThrottlerGuard {
  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const seconds = Math.max(1, Math.ceil(detail.timeToBlockExpire || detail.timeToExpire));
    context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(seconds));
    await super.throwThrottlingException(context, detail);
  }
}
