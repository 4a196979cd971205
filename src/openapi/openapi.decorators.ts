import { applyDecorators } from '@nestjs/common';
import { ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';

import { CSRF_SCHEME, ERROR_SCHEMA, SESSION_SCHEME } from './openapi';

const error = (status: number, description: string) =>
  ApiResponse({ status, description, schema: { $ref: `#/components/schemas/${ERROR_SCHEMA}` } });

/**
 * A JSON management controller in the OpenAPI document: its tag and the error answers every one of
 * its routes may give (the one error body, src/common/README.md). Documentation only.
 */
export const ManagementApi = (tag: string): ClassDecorator =>
  applyDecorators(
    ApiTags(tag),
    error(400, 'VALIDATION_FAILED (with `fields`) or BAD_REQUEST'),
    error(401, 'UNAUTHENTICATED: no signed-in session'),
    error(403, 'FORBIDDEN: the role may not do this, or the CSRF token is missing or wrong'),
    error(404, 'NOT_FOUND: unknown, or another organization’s'),
  );

/** A read: the session cookie. */
export const SessionRead = (): MethodDecorator => applyDecorators(ApiSecurity(SESSION_SCHEME));

/** A write: the session cookie and the CSRF token header. */
export const SessionWrite = (): MethodDecorator =>
  applyDecorators(ApiSecurity({ [SESSION_SCHEME]: [], [CSRF_SCHEME]: [] }));
