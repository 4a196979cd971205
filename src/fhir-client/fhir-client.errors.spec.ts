import { operationOutcomeText } from './fhir-client.errors';

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
