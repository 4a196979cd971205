import type { ServerResponse } from 'node:http';

import { HttpStatus, Logger } from '@nestjs/common';
import { Request } from 'express';

import { DomainError, REQUEST_CODES } from 'src/common/errors/domain-error';
import { ErrorResponse, toErrorResponse } from 'src/common/errors/error-response';
import { Role } from 'src/users/user.types';

/**
 * What both transport filters do before rendering: describe the error (toErrorResponse), log it
 * as its kind deserves, and set Retry-After. `req` is only read for its path (for the log): the FHIR
 * gateway, which Express never sees, passes the path it parsed.
 */
export function prepareAnswer(
  exception: unknown,
  req: Pick<Request, 'path'>,
  res: Pick<ServerResponse, 'setHeader' | 'getHeader'>,
  logger: Logger,
): ErrorResponse {
  const answer = toErrorResponse(exception);
  if (answer.unexpected) {
    logger.error({ err: exception, path: req.path }, 'Unhandled error');
  } else if (exception instanceof DomainError && !REQUEST_CODES.has(exception.code)) {
    // The cause (an upstream error) goes to the log only: its body can echo codes or tokens.
    const fields = {
      failure: exception.code,
      orgId: exception.organizationId,
      // Our own fault keeps its stack; an upstream error's cause stays in the log only.
      err: exception.cause ?? (answer.status === HttpStatus.INTERNAL_SERVER_ERROR ? exception : undefined),
    };
    const text = `Request failed: ${exception.code} (${exception.message})`;
    // Our own fault (a 500) is an error; an upstream server's (502, 503) or a caller's is a warning.
    if (answer.status === HttpStatus.INTERNAL_SERVER_ERROR) logger.error(fields, text);
    else logger.warn(fields, text);
  }
  if (answer.retryAfterSeconds !== undefined) {
    res.setHeader('Retry-After', String(Math.max(0, Math.ceil(answer.retryAfterSeconds))));
  }
  // Every 429 says when to come back (RFC 6585 §4); the login throttle sets the exact time.
  if (answer.status === HttpStatus.TOO_MANY_REQUESTS && !res.getHeader('Retry-After')) {
    res.setHeader('Retry-After', '60');
  }
  return answer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The organization page an error page links back to: the error's organization, else the admin
 * routes' `?org=`; shown only to someone who administers it (a patient or provider never gets a
 * link into the console).
 */
export function backLink(req: Request, organizationId: string | undefined): string | undefined {
  const query = typeof req.query.org === 'string' && UUID.test(req.query.org) ? req.query.org : undefined;
  const id = organizationId ?? query;
  const user = req.user;
  if (!id || !user) return undefined;
  const administers =
    user.role === Role.RootAdmin || (user.role === Role.OrgAdmin && user.organizationId === id);
  return administers ? `/admin/organizations/${id}` : undefined;
}
