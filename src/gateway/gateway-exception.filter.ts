import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import { Request, Response } from 'express';

import { prepareAnswer } from 'src/common/filters/error-answer';

import { FHIR_JSON, toOperationOutcome } from './operation-outcome';

/**
 * Every error on the gateway's routes, as a FHIR OperationOutcome (`@UseFilters` on its controller,
 * tried before the global JSON and page filters). Described by the common seam (toErrorResponse,
 * through prepareAnswer, which also logs it and sets Retry-After), rendered by toOperationOutcome.
 */
@Catch()
export class GatewayExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Gateway');

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      // The answer was already streaming: the only way left to say it failed is to cut it off.
      this.logger.warn({ err: exception, path: req.path }, 'FHIR gateway answer broken off');
      res.destroy();
      return;
    }
    const answer = toOperationOutcome(exception, prepareAnswer(exception, req, res, this.logger));
    if (answer.status === 401) {
      // RFC 6750 §3: the challenge; an error code only when a credential was presented (§3.1).
      res.setHeader(
        'WWW-Authenticate',
        req.headers.authorization ? 'Bearer error="invalid_token"' : 'Bearer',
      );
    }
    // Not res.send: it would add an ETag, which FHIR reads as a resource version (FHIR R4 §3.1.0.4.1).
    const text = JSON.stringify(answer.body);
    res.status(answer.status).setHeader('Content-Type', FHIR_JSON);
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  }
}
