import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

import type { ManagementSchema } from './management-schemas';
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

/**
 * A JSON answer of a management route: one of MANAGEMENT_SCHEMAS (management-schemas.ts), or an
 * array of it. `status` defaults to 200.
 */
export const JsonResponse = (
  schema: ManagementSchema | [ManagementSchema],
  description: string,
  status = 200,
): MethodDecorator => {
  const [name, isArray] = Array.isArray(schema) ? [schema[0], true] : [schema, false];
  const one = { $ref: `#/components/schemas/${name}` };
  return applyDecorators(
    ApiResponse({ status, description, schema: isArray ? { type: 'array', items: one } : one }),
  );
};

/** A 204: the route answers no body. */
export const NoContentResponse = (description: string): MethodDecorator =>
  applyDecorators(ApiResponse({ status: 204, description }));

/**
 * `?limit=`: an optional whole number from 1 to `max`, `fallback` when absent (the service applies
 * it). Validated (a string from the query, converted) and documented at once, so neither can drift.
 */
export const QueryLimit = (max: number, fallback: number, description: string): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: max, default: fallback, description }),
    IsOptional(),
    Type(() => Number),
    IsInt(),
    Min(1),
    Max(max),
  );
