import { NotFoundException } from '@nestjs/common';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';

import { readOutcome } from './read-outcome';

describe('readOutcome', () => {
  it('gives the value of a read that worked', async () => {
    await expect(readOutcome(() => Promise.resolve(42))).resolves.toEqual({ ok: true, value: 42 });
  });

  it.each([
    [ErrorCode.NotConnected, FhirErrorKind.NotConnected],
    [ErrorCode.ReauthenticationRequired, FhirErrorKind.ReauthenticationRequired],
    [ErrorCode.EpicUnavailable, FhirErrorKind.Unavailable],
    [ErrorCode.FhirRequestFailed, FhirErrorKind.Request],
  ])('gives a failed FHIR read (%s) as data, by its code', async (code, kind) => {
    const error = new FhirClientError(kind, 'Epic said no.');
    await expect(readOutcome(() => Promise.reject(error))).resolves.toEqual({ ok: false, error });
    const plain = new DomainError(code, 'Epic said no.');
    await expect(readOutcome(() => Promise.reject(plain))).resolves.toMatchObject({
      ok: false,
      error: { code },
    });
  });

  it('lets every other error through to the error page', async () => {
    const unreadable = new DomainError(ErrorCode.SecretUnreadable, 'A stored secret cannot be read.');
    await expect(readOutcome(() => Promise.reject(unreadable))).rejects.toBe(unreadable);
    const notFound = new NotFoundException();
    await expect(readOutcome(() => Promise.reject(notFound))).rejects.toBe(notFound);
    const bug = new TypeError('x is undefined');
    await expect(readOutcome(() => Promise.reject(bug))).rejects.toBe(bug);
  });
});
