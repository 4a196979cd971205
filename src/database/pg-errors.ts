import { QueryFailedError } from 'typeorm';

/** The SQLSTATE of a failed statement (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export function pgErrorCode(error: unknown): string | undefined {
  return error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
}

/** 23503 foreign_key_violation: the row it points at is gone (an organization deleted meanwhile). */
export const isForeignKeyViolation = (error: unknown): boolean => pgErrorCode(error) === '23503';

/** 23505 unique_violation. */
export const isUniqueViolation = (error: unknown): boolean => pgErrorCode(error) === '23505';
