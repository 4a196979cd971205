import type { ValidationError } from 'class-validator';

import { DomainError, ErrorCode, FieldErrors } from './domain-error';

/**
 * 400 VALIDATION_FAILED naming each field: the one shape of field errors, whether the global
 * ValidationPipe or a service's own rule found them. JSON: `{ statusCode: 400, code, message:
 * [every message], fields: { name: [messages] } }`.
 */
export function validationFailed(fields: FieldErrors): DomainError {
  return new DomainError(ErrorCode.ValidationFailed, fieldMessages(fields).join(' '), { fields });
}

/** Every message of `fields`, field by field. */
export function fieldMessages(fields: FieldErrors): string[] {
  return Object.values(fields).flat();
}

/**
 * class-validator's errors as FieldErrors, worded as Nest's ValidationPipe words them: a nested
 * property's key is its path (`address.city`) and its messages start with the parent's path.
 */
export function fieldErrorsOf(errors: ValidationError[]): FieldErrors {
  const fields: FieldErrors = {};
  const add = (path: string, constraints: Record<string, string> | undefined, prefix: string): void => {
    const messages = Object.values(constraints ?? {});
    if (messages.length > 0) (fields[path] ??= []).push(...messages.map((m) => prefix + m));
  };
  // As ValidationPipe.mapChildrenToValidationErrors: a parent with children reports its children.
  const walk = (error: ValidationError, parentPath?: string): void => {
    if (!error.children?.length) return add(error.property, error.constraints, ''); // top level only
    const path = parentPath ? `${parentPath}.${error.property}` : error.property;
    for (const child of error.children) {
      if (child.children?.length) walk(child, path);
      add(`${path}.${child.property}`, child.constraints, `${path}.`);
    }
  };
  for (const error of errors) walk(error);
  return fields;
}

/** The global ValidationPipe's exceptionFactory: DTO violations in the one field-error shape. */
export function validationPipeError(errors: ValidationError[]): DomainError {
  return validationFailed(fieldErrorsOf(errors));
}
