import { BadRequestException, CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Request } from 'express';

import { CONTROL_CHARACTERS } from 'src/common/validation/text-rules';

/** Deeper than any form or DTO of ours; deeper input is refused rather than walked. */
const MAX_DEPTH = 8;

/**
 * Global guard: no query, route parameter or body value (nor field name) may carry a control
 * character (NUL, CR/LF, ESC, DEL, C1), whatever the route, before any handler, pipe, passport
 * strategy or query sees it. PostgreSQL cannot store NUL, and CR/LF in anything that reaches a
 * header splits it; no field of ours needs them (a field that must span lines would be exempted
 * here by name). The answer is a 400 naming each field, never the value.
 */
@Injectable()
export class InputTextGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    const problems = new Set<string>();
    for (const source of [req.params, req.query, req.body] as unknown[]) {
      findControlCharacters(source, '', problems, 0);
    }
    if (problems.size > 0) throw new BadRequestException([...problems]);
    return true;
  }
}

function findControlCharacters(value: unknown, path: string, problems: Set<string>, depth: number): void {
  if (typeof value === 'string') {
    if (CONTROL_CHARACTERS.test(value)) {
      problems.add(
        `${path || 'the request'} must not contain control characters (such as NUL or line breaks)`,
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
      problems,
      depth + 1,
    );
  }
}
