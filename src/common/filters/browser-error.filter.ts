import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import { Request, Response } from 'express';

import { LoginRequiredException, PasswordChangeRequiredException } from 'src/common/errors';
import { DomainError, REQUEST_CODES } from 'src/common/errors/domain-error';

import { backLink, prepareAnswer } from './error-answer';

/**
 * Errors on browser routes never answer JSON or a bare 500: a page says what happened and what to
 * do, with the status of the code. A signed-out visitor is sent to the login page, a pending
 * password change to its page. An EHR connection failure links back to its organization.
 */
@Catch()
export class BrowserErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(BrowserErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) return;
    if (exception instanceof LoginRequiredException) {
      res.redirect(303, `/login?next=${encodeURIComponent(exception.returnTo)}`);
      return;
    }
    if (exception instanceof PasswordChangeRequiredException) {
      res.redirect(303, '/account/password');
      return;
    }
    const answer = prepareAnswer(exception, req, res, this.logger);
    const connection = exception instanceof DomainError && !REQUEST_CODES.has(exception.code);
    res.status(answer.status).render('error', {
      title: connection ? 'EHR connection' : `${answer.status}`,
      status: answer.status,
      messages: answer.messages,
      user: req.user,
      back: exception instanceof DomainError ? backLink(req, answer.organizationId) : undefined,
    });
  }
}
