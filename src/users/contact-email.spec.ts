import { checkContactEmail } from './contact-email';

describe('checkContactEmail', () => {
  it('takes an address, trimmed', () => {
    expect(checkContactEmail('  pat@example.org ')).toEqual({ ok: true, address: 'pat@example.org' });
  });

  it('clears on blank or missing', () => {
    expect(checkContactEmail('')).toEqual({ ok: true, address: null });
    expect(checkContactEmail('   ')).toEqual({ ok: true, address: null });
    expect(checkContactEmail(undefined)).toEqual({ ok: true, address: null });
  });

  it.each([
    ['not an address', 'pat'],
    ['no domain', 'pat@'],
    ['no TLD', 'pat@localhost'],
    ['a display name', 'Pat <pat@example.org>'],
    ['two addresses', 'a@example.org, b@example.org'],
    ['a header injection', 'pat@example.org\r\nBcc: x@example.org'],
  ])('refuses %s with a sentence', (_label, input) => {
    const checked = checkContactEmail(input);
    expect(checked.ok).toBe(false);
    expect(!checked.ok && checked.error).toMatch(/email address/);
  });

  it('refuses the launch placeholder, too long, and non-strings', () => {
    expect(checkContactEmail('patient.123.abcd@launch.invalid')).toEqual({
      ok: false,
      error: 'That address cannot receive email: enter your own.',
    });
    expect(checkContactEmail(`${'a'.repeat(250)}@example.org`).ok).toBe(false);
    expect(checkContactEmail(['pat@example.org']).ok).toBe(false);
  });
});
