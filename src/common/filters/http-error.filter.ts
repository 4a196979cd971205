import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { Request } from 'express';

import { ApiErrorFilter } from './api-error.filter';
import { BrowserErrorFilter } from './browser-error.filter';

function wantsHtml(req: Request): boolean {
  // Set by AuthenticatedGuard from @HtmlRoutes; errors raised before the guard (CSRF, 404) fall
  // back to content negotiation.
  return req.htmlErrors ?? req.accepts(['json', 'html']) === 'html';
}

/**
 * The global filter (APP_FILTER): every error becomes a response of its route's transport, a page
 * for browser routes (@HtmlRoutes) and JSON for the API. Both transports describe an error with
 * the same toErrorResponse (src/common/errors/error-response.ts). A route with a transport of its
 * own (a FHIR OperationOutcome) puts its filter on the controller with @UseFilters: Nest tries
 * controller filters before this one.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly api = new ApiErrorFilter();
  private readonly browser = new BrowserErrorFilter();

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    (wantsHtml(req) ? this.browser : this.api).catch(exception, host);
  }
}
