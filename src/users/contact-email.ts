import { isEmail } from 'class-validator';

/** Launch users' placeholder addresses (`…@launch.invalid`, RFC 6761 §6.4): nobody reads them. */
export const PLACEHOLDER_EMAIL = /@launch\.invalid$/i;

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254 characters. */
const MAX_LENGTH = 254;

export type ContactEmailCheck = { ok: true; address: string | null } | { ok: false; error: string };

/**
 * A contact address as a user entered it: trimmed; blank clears it (null). Refused, with a sentence
 * the form shows: not an address (class-validator's `isEmail`, no display name, an ASCII or
 * internationalized domain with a TLD), too long, or a `.invalid` placeholder.
 */
export function checkContactEmail(input: unknown): ContactEmailCheck {
  if (input === undefined || input === null) return { ok: true, address: null };
  if (typeof input !== 'string') return { ok: false, error: 'Enter an email address, or leave it blank.' };
  const address = input.trim();
  if (address === '') return { ok: true, address: null };
  if (address.length > MAX_LENGTH) {
    return { ok: false, error: `An email address has at most ${MAX_LENGTH} characters.` };
  }
  if (!isEmail(address, { allow_display_name: false, require_tld: true, allow_ip_domain: false })) {
    return { ok: false, error: 'That is not an email address: it should look like name@example.org.' };
  }
  if (PLACEHOLDER_EMAIL.test(address)) {
    return { ok: false, error: 'That address cannot receive email: enter your own.' };
  }
  return { ok: true, address };
}
