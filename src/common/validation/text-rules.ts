import { Matches, ValidationOptions } from 'class-validator';

/**
 * Control characters no single-line field may carry: C0 (NUL, CR, LF, tab, ESC …), DEL and C1.
 * PostgreSQL refuses NUL in text; CR/LF in anything that reaches an HTTP header splits it.
 */
export const CONTROL_CHARACTERS = /\p{Cc}/u; // U+0000–U+001F, U+007F–U+009F

/**
 * Text that is shown or stored as one line (names, search): no control characters and no Unicode
 * line or paragraph separators.
 */
export function IsSingleLineText(options?: ValidationOptions): PropertyDecorator {
  return Matches(/^[^\p{Cc}\p{Zl}\p{Zp}]*$/u, {
    message: ({ property }) => `${property} must be a single line without control characters`,
    ...options,
  });
}

/**
 * A value sent in an HTTP header or a form-encoded credential (an OAuth client ID): visible ASCII
 * only, so no space, line break, control, format or non-ASCII character can change the header.
 */
export function IsHeaderToken(options?: ValidationOptions): PropertyDecorator {
  return Matches(/^[\x21-\x7e]*$/, {
    message: ({ property }) =>
      `${property} may contain only visible ASCII characters (no spaces, line breaks or control characters)`,
    ...options,
  });
}

/**
 * A secret or URL sent in a header or a request line: no control, format (zero-width) or
 * separator characters, and no spaces.
 */
export function IsHeaderSafeText(options?: ValidationOptions): PropertyDecorator {
  return Matches(/^[^\p{Cc}\p{Cf}\p{Z}]*$/u, {
    message: ({ property }) => `${property} must not contain spaces, line breaks or invisible characters`,
    ...options,
  });
}
