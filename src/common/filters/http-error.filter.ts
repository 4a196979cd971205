import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { Request, Response } from 'express';

import { LoginRequiredException, PasswordChangeRequiredException } from 'src/common/errors';

function wantsHtml(req: Request): boolean {
  // Set by AuthenticatedGuard from @HtmlRoutes; errors raised before the guard (CSRF, 404) fall
  // back to content negotiation.
  return req.htmlErrors ?? req.accepts(['json', 'html']) === 'html';
}

/**
 * The one place errors become responses: JSON for API callers, a page or redirect for browsers.
 * Unexpected errors are logged with their cause and answered with a generic 500, never a stack.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    if (res.headersSent) return;

    const html = wantsHtml(req);
    if (html && exception instanceof LoginRequiredException) {
      res.redirect(303, `/login?next=${encodeURIComponent(exception.returnTo)}`);
      return;
    }
    if (html && exception instanceof PasswordChangeRequiredException) {
      res.redirect(303, '/account/password');
      return;
    }

    let status = HttpStatus.INTERNAL_SERVER_ERROR;
    let body: Record<string, unknown> = { statusCode: status, message: 'Internal server error' };
    if (exception instanceof HttpException) {
      status = exception.getStatus();
      const response = exception.getResponse();
      body =
        typeof response === 'string'
          ? { statusCode: status, message: response }
          : { statusCode: status, ...(response as Record<string, unknown>) };
    } else {
      this.logger.error({ err: exception, path: req.path }, 'Unhandled error');
    }

    // Every 429 says when to come back (RFC 6585 §4); the login throttle sets the exact time.
    if (status === HttpStatus.TOO_MANY_REQUESTS && !res.getHeader('Retry-After')) {
      res.setHeader('Retry-After', '60');
    }

    if (html) {
      const messages = Array.isArray(body.message) ? (body.message as string[]) : [String(body.message)];
      res.status(status).render('error', { title: `${status}`, status, messages, user: req.user });
      return;
    }
    res.status(status).json(body);
  }
}
