import { EPIC_SANDBOX_FHIR_BASE } from './organization.types';
import { EPIC_LABEL, isEpicBaseUrl, isEpicDiscovery, serverLabel, speakOfServer } from './server-label';

describe('serverLabel', () => {
  it.each([
    EPIC_SANDBOX_FHIR_BASE,
    'http://127.0.0.1:4010/interconnect-fhir-oauth/api/FHIR/R4', // the fake Epic
    'https://epicproxy.et0922.epichosted.com/FHIRProxy/api/FHIR/R4',
    'https://sfd.hospital.example/FHIRPRD/api/FHIR/R4',
    'https://fhir.hospital.example/Interconnect-FHIR-PRD/api/FHIR/STU3',
    'https://fhir.hospital.example/interconnect-fhir-oauth/api/FHIR/DSTU2/',
    'https://vendorservices.epic.com/interconnect-amcurprd-oauth/api/FHIR/R4',
  ])('calls an Epic-shaped base URL "Epic": %s', (fhirBaseUrl) => {
    expect(serverLabel({ fhirBaseUrl })).toMatchObject({
      name: 'Epic',
      subject: 'Epic',
      noun: 'Epic',
      possessive: 'Epic’s',
      isEpic: true,
      source: 'detected',
    });
  });

  it.each([
    'https://launch.smarthealthit.org/v/r4/fhir',
    'https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d',
    'https://api.platform.athenahealth.com/fhir/r4',
    'http://127.0.0.1:4010/smart/fhir', // the fake as a generic SMART server
    'https://hapi.example.org/baseR4',
    'https://fhir.example.org/api/fhir/r4', // Epic's path has Epic's casing
    'https://notepic.com.example.org/fhir',
    'not a url',
  ])('calls any other server "the EHR": %s', (fhirBaseUrl) => {
    expect(serverLabel({ fhirBaseUrl })).toEqual({
      name: 'the EHR',
      subject: 'The EHR',
      noun: 'EHR',
      possessive: 'the EHR’s',
      isEpic: false,
      source: 'detected',
    });
  });

  it('uses the name an administrator gave, which also says whether the server is Epic', () => {
    expect(
      serverLabel({
        fhirBaseUrl: 'https://fhir-ehr.cerner.com/r4/t1',
        fhirServerName: ' Cerner Millennium ',
      }),
    ).toEqual({
      name: 'Cerner Millennium',
      subject: 'Cerner Millennium',
      noun: 'Cerner Millennium',
      possessive: 'Cerner Millennium’s',
      isEpic: false,
      source: 'admin',
    });
    // A name overrides an Epic-shaped URL: the administrator knows the server.
    expect(
      serverLabel({ fhirBaseUrl: EPIC_SANDBOX_FHIR_BASE, fhirServerName: 'SMART Health IT' }),
    ).toMatchObject({ name: 'SMART Health IT', isEpic: false });
    // ...and says "Epic" to keep Epic's help, whatever the URL looks like.
    expect(
      serverLabel({ fhirBaseUrl: 'https://fhir.mercy.example/fhir', fhirServerName: 'Epic at Mercy' }),
    ).toMatchObject({ name: 'Epic at Mercy', isEpic: true, source: 'admin' });
    expect(serverLabel({ fhirBaseUrl: null, fhirServerName: 'EPIC (production)' }).isEpic).toBe(true);
    expect(serverLabel({ fhirBaseUrl: null, fhirServerName: 'Epicure EHR' }).isEpic).toBe(false);
    // Blank is no name.
    expect(serverLabel({ fhirBaseUrl: EPIC_SANDBOX_FHIR_BASE, fhirServerName: '  ' })).toMatchObject({
      name: 'Epic',
      source: 'detected',
    });
  });

  it('says Epic while no base URL is registered (the default, Epic’s sandbox)', () => {
    expect(serverLabel({ fhirBaseUrl: null })).toMatchObject({ name: 'Epic', isEpic: true });
  });

  it('recognises Epic by its discovery document where the caller has one', () => {
    const proxy = 'https://fhir.hospital.example/fhir/r4';
    expect(
      serverLabel({
        fhirBaseUrl: proxy,
        discovery: { jwksUri: 'https://fhir.hospital.example/api/epic/2019/Security/Open/PublicKeys/1/OIDC' },
      }),
    ).toMatchObject({ name: 'Epic', isEpic: true });
    // A generic SMART server: the FHIR base is the issuer, the keys are elsewhere.
    expect(
      serverLabel({
        fhirBaseUrl: 'https://launch.smarthealthit.org/v/r4/fhir',
        discovery: {
          issuer: 'https://launch.smarthealthit.org/v/r4/fhir',
          jwksUri: 'https://launch.smarthealthit.org/keys',
        },
      }),
    ).toMatchObject({ name: 'the EHR', isEpic: false });
  });
});

describe('isEpicBaseUrl and isEpicDiscovery', () => {
  it('read the host and the path of a base URL', () => {
    expect(isEpicBaseUrl('https://fhir.epic.com/anything')).toBe(true);
    expect(isEpicBaseUrl('https://epic.example.org/fhir')).toBe(false);
  });

  it('read Epic’s issuer layout, `{server}/oauth2` for a base `{server}/api/FHIR/…`', () => {
    const server = 'https://fhir.hospital.example/interconnect-fhir-oauth';
    expect(isEpicDiscovery(`${server}/api/FHIR/R4`, { issuer: `${server}/oauth2` })).toBe(true);
    expect(isEpicDiscovery('https://other.example/fhir', { issuer: `${server}/oauth2` })).toBe(false);
    expect(isEpicDiscovery(`${server}/api/FHIR/R4`, {})).toBe(false);
  });
});

describe('speakOfServer', () => {
  const generic = serverLabel({ fhirBaseUrl: 'https://ehr.example.org/fhir' });
  const named = serverLabel({ fhirBaseUrl: 'https://ehr.example.org/fhir', fhirServerName: 'Cerner' });

  it('leaves messages about Epic unchanged for an Epic organization', () => {
    const message = "Epic's token endpoint answered HTTP 500. Epic rejected it (Epic: this can take hours).";
    expect(speakOfServer(message, EPIC_LABEL)).toBe(message);
  });

  it('names the server, with sentence case and possessives, and drops Epic-only asides', () => {
    expect(
      speakOfServer(
        "Epic's token endpoint answered HTTP 500. Epic rejected the client; check it at Epic (Epic: this can take hours).",
        generic,
      ),
    ).toBe('The EHR’s token endpoint answered HTTP 500. The EHR rejected the client; check it at the EHR.');
    expect(speakOfServer('Not connected to Epic yet.', named)).toBe('Not connected to Cerner yet.');
    expect(speakOfServer('Epidemic data from Epics', generic)).toBe('Epidemic data from Epics');
  });
});
