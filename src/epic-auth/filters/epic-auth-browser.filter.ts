import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import { Request, Response } from 'express';

import { EpicAuthError, EpicAuthErrorCode } from '../epic-auth.errors';

export const STATUS_BY_CODE: Record<EpicAuthErrorCode, number> = {
  [EpicAuthErrorCode.DiscoveryFailed]: HttpStatus.BAD_GATEWAY,
  [EpicAuthErrorCode.DiscoveryIncompatible]: HttpStatus.BAD_GATEWAY,
  [EpicAuthErrorCode.NotConfigured]: HttpStatus.CONFLICT,
  [EpicAuthErrorCode.InvalidState]: HttpStatus.BAD_REQUEST,
  [EpicAuthErrorCode.InvalidCallback]: HttpStatus.BAD_REQUEST,
  [EpicAuthErrorCode.ClientSecretRefused]: HttpStatus.CONFLICT,
  [EpicAuthErrorCode.AuthorizationDenied]: HttpStatus.BAD_REQUEST,
  [EpicAuthErrorCode.TokenExchangeFailed]: HttpStatus.BAD_GATEWAY,
  [EpicAuthErrorCode.IdTokenInvalid]: HttpStatus.BAD_GATEWAY,
  [EpicAuthErrorCode.NotConnected]: HttpStatus.CONFLICT,
  [EpicAuthErrorCode.ReauthenticationRequired]: HttpStatus.CONFLICT,
  [EpicAuthErrorCode.EpicUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [EpicAuthErrorCode.LaunchRefused]: HttpStatus.BAD_REQUEST,
};

/** Browser OAuth routes never answer JSON or a bare 500: a page says what happened and what to do. */
@Catch(EpicAuthError)
export class EpicAuthBrowserFilter implements ExceptionFilter<EpicAuthError> {
  private readonly logger = new Logger(EpicAuthBrowserFilter.name);

  catch(error: EpicAuthError, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    this.logger.warn({ failure: error.code, err: error.cause }, `Epic authorization failed: ${error.code}`);
    const org =
      typeof req.query.org === 'string' && /^[0-9a-f-]{36}$/i.test(req.query.org) ? req.query.org : null;
    res.status(STATUS_BY_CODE[error.code]).render('error', {
      title: 'EHR connection',
      status: STATUS_BY_CODE[error.code],
      messages: [error.message],
      user: req.user,
      back: org ? `/admin/organizations/${org}` : undefined,
    });
  }
}
