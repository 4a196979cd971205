import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import { Response } from 'express';

import { EpicAuthError } from '../epic-auth.errors';
import { STATUS_BY_CODE } from './epic-auth-browser.filter';

/** EpicAuth errors on JSON routes: `{ statusCode, code, message }`; the upstream cause only in the log. */
@Catch(EpicAuthError)
export class EpicAuthApiFilter implements ExceptionFilter<EpicAuthError> {
  private readonly logger = new Logger(EpicAuthApiFilter.name);

  catch(error: EpicAuthError, host: ArgumentsHost): void {
    this.logger.warn({ failure: error.code, err: error.cause }, `Epic request failed: ${error.code}`);
    const status = STATUS_BY_CODE[error.code];
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(status)
      .json({ statusCode: status, code: error.code, message: error.message });
  }
}
