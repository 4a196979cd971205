import {
  GATEWAY_SECURITY,
  gatewayCapabilityStatement,
  gatewayCapabilityStatementXml,
} from './capability-statement';

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

describe('gatewayCapabilityStatementXml', () => {
  const OAUTH = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';
  const security =
    `<security><extension url="${OAUTH}"><extension url="token">` +
    '<valueUri value="https://ehr.example.org/oauth2/token"/></extension></extension>' +
    '<cors value="true"/></security>';
  const statement = (rest: string, head = '<?xml version="1.0" encoding="UTF-8"?>') =>
    `${head}<CapabilityStatement xmlns="http://hl7.org/fhir"><status value="active"/>` +
    `<fhirVersion value="4.0.1"/>${rest}</CapabilityStatement>`;
  const gateway = (xml: string | null) => {
    expect(xml).not.toBeNull();
    expect(xml).not.toContain('ehr.example.org');
    return xml!;
  };

  it("replaces the server's security with the gateway's, every other byte as it was", () => {
    const rest = `<rest><mode value="server"/>${security}<resource><type value="Patient"/></resource></rest>`;
    const out = gateway(gatewayCapabilityStatementXml(statement(rest)));
    expect(out).toBe(
      statement(
        '<rest><mode value="server"/><security><cors value="false"/><description value="' +
          GATEWAY_SECURITY.description.replace('<key>', '&#60;key&#62;').replace("'", '&#39;') +
          '"/></security><resource><type value="Patient"/></resource></rest>',
      ),
    );
  });

  it('handles every rest, a self-closed security, and a rest without one (added in FHIR order)', () => {
    const xml = statement(
      `<rest><mode value="server"/>${security}</rest>` +
        '<rest><mode value="client"/><security/></rest>' +
        '<rest><mode value="server"/><documentation value="d"/><resource><type value="Patient"/></resource></rest>',
    );
    const out = gateway(gatewayCapabilityStatementXml(xml));
    expect(out.split('<security><cors value="false"/>').length - 1).toBe(3);
    expect(out).toContain('<documentation value="d"/><security><cors value="false"/>');
  });

  it('is not fooled by comments, processing instructions, CDATA, or > in attribute values', () => {
    const xml = statement(
      '<!-- <rest><security> --><?pi <rest>?><![CDATA[<rest><security>]]>' +
        `<rest><mode value="server"/><documentation value="a > b &amp; c"/>${security}</rest>`,
    );
    const out = gateway(gatewayCapabilityStatementXml(xml));
    expect(out).toContain('<!-- <rest><security> --><?pi <rest>?><![CDATA[<rest><security>]]>');
    expect(out).toContain('<documentation value="a > b &amp; c"/><security><cors value="false"/>');
  });

  it('fails closed on what it does not fully understand', () => {
    const rest = `<rest><mode value="server"/>${security}</rest>`;
    for (const xml of [
      statement(rest, '<!DOCTYPE x [<!ENTITY e "<security/>">]>'),
      statement(rest, '<?xml version="1.0" encoding="ISO-8859-1"?>'),
      statement(rest).replace('</CapabilityStatement>', ''),
      statement(`<f:rest xmlns:f="http://hl7.org/fhir">${security}</f:rest>`),
      statement(rest).replace('xmlns="http://hl7.org/fhir"', ''),
      `<Patient xmlns="http://hl7.org/fhir">${rest}</Patient>`,
      statement('<rest><security></rest></security>'),
      statement(rest) + statement(rest, ''),
      statement('<rest/>'),
      statement('<rest><mode value="server/></rest>'),
    ]) {
      expect(gatewayCapabilityStatementXml(xml)).toBeNull();
    }
  });
});
