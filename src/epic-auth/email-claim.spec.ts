import { emailClaim } from './code-exchange.service';

describe('emailClaim (the id_token claim stored as a launch user contact address)', () => {
  it('takes a string claim, trimmed, unless marked unverified', () => {
    expect(emailClaim({ email: ' pat@example.org ' })).toBe('pat@example.org');
    expect(emailClaim({ email: 'pat@example.org', email_verified: true })).toBe('pat@example.org');
    expect(emailClaim({ email: 'pat@example.org', email_verified: false })).toBeNull();
  });

  it('ignores a missing, blank or non-string claim', () => {
    expect(emailClaim({})).toBeNull();
    expect(emailClaim({ email: '  ' })).toBeNull();
    expect(emailClaim({ email: ['pat@example.org'] })).toBeNull();
  });
});
