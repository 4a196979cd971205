import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';

describe('EpicAuthErrorCode (EpicAuth’s names for ErrorCode members)', () => {
  it('is the same code as ErrorCode’s member of the same name', () => {
    expect(EpicAuthErrorCode.NotConnected).toBe(ErrorCode.NotConnected);
    for (const [name, code] of Object.entries(EpicAuthErrorCode)) {
      expect(ErrorCode[name as keyof typeof ErrorCode]).toBe(code);
    }
  });

  it('keeps every code EpicAuth has thrown', () => {
    expect(Object.values(EpicAuthErrorCode).sort()).toEqual([
      'AUTHORIZATION_DENIED',
      'CLIENT_SECRET_REFUSED',
      'DISCOVERY_FAILED',
      'DISCOVERY_INCOMPATIBLE',
      'EPIC_UNAVAILABLE',
      'ID_TOKEN_INVALID',
      'INVALID_CALLBACK',
      'INVALID_STATE',
      'LAUNCH_REFUSED',
      'NOT_CONFIGURED',
      'NOT_CONNECTED',
      'REAUTHENTICATION_REQUIRED',
      'TOKEN_EXCHANGE_FAILED',
    ]);
  });
});

describe('EpicAuthError', () => {
  it('is a DomainError with its code, organization and cause', () => {
    const cause = new Error('invalid_grant');
    const sut = new EpicAuthError(EpicAuthErrorCode.ReauthenticationRequired, 'Sign in at Epic again.', {
      cause,
      organizationId: 'org-1',
    });
    expect(sut).toBeInstanceOf(DomainError);
    expect(sut).toMatchObject({
      name: 'EpicAuthError',
      code: ErrorCode.ReauthenticationRequired,
      message: 'Sign in at Epic again.',
      organizationId: 'org-1',
    });
    expect(sut.cause).toBe(cause);
    expect(new EpicAuthError(EpicAuthErrorCode.LaunchRefused, 'No iss.').organizationId).toBeUndefined();
  });
});
