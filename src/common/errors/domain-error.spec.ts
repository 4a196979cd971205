import { codeForStatus, DomainError, ERROR_STATUS, ErrorCode, REQUEST_CODES } from './domain-error';

/** The table again, written out: a changed status must change this test too (src/common/README.md). */
const EXPECTED: [ErrorCode, number][] = [
  [ErrorCode.ValidationFailed, 400],
  [ErrorCode.BadRequest, 400],
  [ErrorCode.Unauthenticated, 401],
  [ErrorCode.Forbidden, 403],
  [ErrorCode.NotFound, 404],
  [ErrorCode.Conflict, 409],
  [ErrorCode.RateLimited, 429],
  [ErrorCode.Internal, 500],
  [ErrorCode.NotConfigured, 409],
  [ErrorCode.NotConnected, 409],
  [ErrorCode.ReauthenticationRequired, 409],
  [ErrorCode.ClientSecretRefused, 409],
  [ErrorCode.InvalidState, 400],
  [ErrorCode.InvalidCallback, 400],
  [ErrorCode.AuthorizationDenied, 400],
  [ErrorCode.LaunchRefused, 400],
  [ErrorCode.DiscoveryFailed, 502],
  [ErrorCode.DiscoveryIncompatible, 502],
  [ErrorCode.TokenExchangeFailed, 502],
  [ErrorCode.IdTokenInvalid, 502],
  [ErrorCode.FhirRequestFailed, 502],
  [ErrorCode.EpicUnavailable, 503],
  [ErrorCode.SecretUnreadable, 500],
];

describe('ErrorCode → HTTP status', () => {
  it.each(EXPECTED)('%s answers %i', (code, status) => {
    expect(ERROR_STATUS[code]).toBe(status);
  });

  it('gives every code a status, and this test covers every code', () => {
    expect(Object.keys(ERROR_STATUS).sort()).toEqual(Object.values(ErrorCode).sort());
    expect(EXPECTED.map(([code]) => code).sort()).toEqual(Object.values(ErrorCode).sort());
  });

  it('codes are their own string values, in SCREAMING_SNAKE_CASE', () => {
    for (const code of Object.values(ErrorCode)) expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
  });
});

describe('codeForStatus (an HttpException gets the request-level code of its status)', () => {
  it.each([
    [400, ErrorCode.BadRequest],
    [401, ErrorCode.Unauthenticated],
    [403, ErrorCode.Forbidden],
    [404, ErrorCode.NotFound],
    [409, ErrorCode.Conflict],
    [429, ErrorCode.RateLimited],
    [500, ErrorCode.Internal],
    [503, ErrorCode.Internal],
    [405, ErrorCode.BadRequest],
    [413, ErrorCode.BadRequest],
  ])('%i → %s', (status, code) => {
    expect(codeForStatus(status)).toBe(code);
  });

  it('returns request-level codes only, each with its own status when it has one', () => {
    for (const status of [400, 401, 403, 404, 409, 429, 500]) {
      const code = codeForStatus(status);
      expect(REQUEST_CODES.has(code)).toBe(true);
      expect(ERROR_STATUS[code]).toBe(status);
    }
  });
});

describe('DomainError', () => {
  it('carries its code, organization, fields, Retry-After and cause', () => {
    const cause = new Error('upstream said no');
    const sut = new DomainError(ErrorCode.EpicUnavailable, 'Epic did not answer in time.', {
      cause,
      organizationId: 'org-1',
      retryAfterSeconds: 30,
    });
    expect(sut).toBeInstanceOf(Error);
    expect(sut).toMatchObject({
      name: 'DomainError',
      code: 'EPIC_UNAVAILABLE',
      message: 'Epic did not answer in time.',
      organizationId: 'org-1',
      retryAfterSeconds: 30,
    });
    expect(sut.cause).toBe(cause);
    expect(new DomainError(ErrorCode.NotFound, 'x').fields).toBeUndefined();
  });
});
