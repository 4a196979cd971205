import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import { Request, Response } from 'express';

import { prepareAnswer } from './error-answer';

/**
 * Errors on JSON routes: `{ statusCode, code, message, fields? }` with the status of the code
 * (src/common/errors/domain-error.ts), and Retry-After when the error says. Causes and unexpected
 * errors go to the log only.
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) return;
    const answer = prepareAnswer(exception, req, res, this.logger);
    res.status(answer.status).json(answer.body);
  }
}
