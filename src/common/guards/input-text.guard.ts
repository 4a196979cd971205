import { BadRequestException, CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Request } from 'express';

import { MULTILINE_FIELDS } from 'src/common/decorators/input.decorators';
import { CONTROL_CHARACTERS, CONTROL_CHARACTERS_EXCEPT_LINE_BREAKS } from 'src/common/validation/text-rules';

/** Deeper than any form or DTO of ours; deeper input is refused rather than walked. */
const MAX_DEPTH = 8;

/**
 * Global guard: no query, route parameter or body value (nor field name) may carry a control
 * character (NUL, CR/LF, ESC, DEL, C1), whatever the route, before any handler, pipe, passport
 * strategy or query sees it. PostgreSQL cannot store NUL, and CR/LF in anything that reaches a
 * header splits it; no field of ours needs them. A route lists the fields that may span lines with
 * @MultilineFields(). The answer is a 400 naming each field, never the value.
 */
@Injectable()
export class InputTextGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    const multiline = new Set(
      this.reflector.getAllAndOverride<string[] | undefined>(MULTILINE_FIELDS, [
        context.getHandler(),
        context.getClass(),
      ]) ?? [],
    );
    const problems = new Set<string>();
    for (const source of [req.params, req.query, req.body] as unknown[]) {
      findControlCharacters(source, '', multiline, problems, 0);
    }
    if (problems.size > 0) throw new BadRequestException([...problems]);
    return true;
  }
}

function findControlCharacters(
  value: unknown,
  path: string,
  multiline: ReadonlySet<string>,
  problems: Set<string>,
  depth: number,
): void {
  if (typeof value === 'string') {
    const rule = multiline.has(path) ? CONTROL_CHARACTERS_EXCEPT_LINE_BREAKS : CONTROL_CHARACTERS;
    if (rule.test(value)) {
      problems.add(
        multiline.has(path)
          ? `${path || 'the request'} must not contain control characters other than line breaks and tabs`
          : `${path || 'the request'} must not contain control characters (such as NUL or line breaks)`,
      );
    }
    return;
  }
  if (!value || typeof value !== 'object') return;
  if (depth >= MAX_DEPTH) {
    problems.add(`${path || 'the request'} is nested too deeply`);
    return;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (CONTROL_CHARACTERS.test(key)) {
      problems.add('a field name must not contain control characters');
      continue;
    }
    // Array items report under their field: `name`, not `name.0`.
    findControlCharacters(
      item,
      Array.isArray(value) ? path : path ? `${path}.${key}` : key,
      multiline,
      problems,
      depth + 1,
    );
  }
}
