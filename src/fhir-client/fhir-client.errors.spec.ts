import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { EpicAuthError, EpicAuthErrorCode } from 'src/epic-auth/epic-auth.errors';

import { FHIR_ERROR_CODE, FhirClientError, FhirErrorKind, operationOutcomeText } from './fhir-client.errors';

describe('FhirClientError', () => {
  it.each([
    [FhirErrorKind.NotConnected, ErrorCode.NotConnected],
    [FhirErrorKind.ReauthenticationRequired, ErrorCode.ReauthenticationRequired],
    [FhirErrorKind.Unavailable, ErrorCode.EpicUnavailable],
    [FhirErrorKind.Request, ErrorCode.FhirRequestFailed],
  ])('kind %s is the code %s', (kind, code) => {
    expect(FHIR_ERROR_CODE[kind]).toBe(code);
    expect(new FhirClientError(kind, 'x').code).toBe(code);
  });

  it('is one code with EpicAuth for the same state: not_connected is NOT_CONNECTED', () => {
    const fhir = new FhirClientError(FhirErrorKind.NotConnected, 'Connect first.');
    const auth = new EpicAuthError(EpicAuthErrorCode.NotConnected, 'Connect first.');
    expect(fhir.code).toBe(auth.code);
  });

  it("is a DomainError that keeps its kind and Epic's own status apart from the code", () => {
    const sut = new FhirClientError(FhirErrorKind.Unavailable, 'Epic is busy.', {
      organizationId: 'org-1',
      status: 429,
      retryAfterSeconds: 60,
    });
    expect(sut).toBeInstanceOf(DomainError);
    expect(sut).toMatchObject({
      name: 'FhirClientError',
      kind: 'unavailable',
      code: 'EPIC_UNAVAILABLE',
      status: 429,
      retryAfterSeconds: 60,
      organizationId: 'org-1',
    });
  });
});

describe('operationOutcomeText', () => {
  it("joins each issue's details.text, else diagnostics, else code", () => {
    expect(
      operationOutcomeText({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'not-found', details: { text: 'The resource was not found.' } },
          { severity: 'error', code: 'processing', diagnostics: 'Search needs the patient parameter' },
          { severity: 'warning', code: 'informational' },
        ],
      }),
    ).toBe('The resource was not found.; Search needs the patient parameter; informational');
  });

  it('ignores bodies that are not an OperationOutcome', () => {
    expect(operationOutcomeText('<html>502</html>')).toBeUndefined();
    expect(operationOutcomeText({ resourceType: 'Patient' })).toBeUndefined();
    expect(operationOutcomeText({ resourceType: 'OperationOutcome', issue: [] })).toBeUndefined();
    expect(operationOutcomeText(undefined)).toBeUndefined();
  });

  it('bounds the text it returns', () => {
    const long = 'x'.repeat(2000);
    expect(
      operationOutcomeText({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'x', diagnostics: long }],
      })!.length,
    ).toBe(500);
  });
});
