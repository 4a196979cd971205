import { SetMetadata } from '@nestjs/common';

export const MULTILINE_FIELDS = 'input:multiline-fields';

/**
 * Body or query fields of this route that may span lines (tab, CR and LF allowed; every other
 * control character is still refused by InputTextGuard). No route needs one yet.
 */
export const MultilineFields = (...fields: string[]): MethodDecorator & ClassDecorator =>
  SetMetadata(MULTILINE_FIELDS, fields);
