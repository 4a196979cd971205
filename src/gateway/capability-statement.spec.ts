import { GATEWAY_SECURITY, gatewayCapabilityStatement } from './capability-statement';

describe('gatewayCapabilityStatement', () => {
  const statement = {
    resourceType: 'CapabilityStatement',
    fhirVersion: '4.0.1',
    rest: [
      {
        mode: 'server',
        security: {
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: 'https://ehr.example.org/oauth2/token' }],
            },
          ],
          service: [{ text: 'SMART-on-FHIR' }],
        },
        resource: [{ type: 'Patient' }],
      },
    ],
  };

  it("replaces the server's security with the gateway's, keeping everything else", () => {
    const out = gatewayCapabilityStatement(statement) as typeof statement;
    expect(JSON.stringify(out)).not.toContain('ehr.example.org');
    expect(out.rest[0]).toEqual({
      mode: 'server',
      security: GATEWAY_SECURITY,
      resource: [{ type: 'Patient' }],
    });
    expect(out.fhirVersion).toBe('4.0.1');
  });

  it('returns anything else unchanged', () => {
    const outcome = { resourceType: 'OperationOutcome', issue: [] };
    expect(gatewayCapabilityStatement(outcome)).toBe(outcome);
    expect(gatewayCapabilityStatement(null)).toBeNull();
  });
});
