import { normalizeIss } from './launch-iss';

describe('normalizeIss', () => {
  const base = 'https://fhir.example.org/interconnect-fhir-oauth/api/fhir/r4';

  it.each([
    ['https://fhir.example.org/interconnect-fhir-oauth/api/FHIR/R4', base],
    ['https://fhir.example.org/interconnect-fhir-oauth/api/FHIR/R4/', base],
    ['HTTPS://FHIR.Example.ORG/interconnect-fhir-oauth/api/FHIR/R4//', base],
    ['https://fhir.example.org:443/interconnect-fhir-oauth/api/FHIR/R4', base],
    ['http://127.0.0.1:4010/api/FHIR/R4', 'http://127.0.0.1:4010/api/fhir/r4'],
  ])('normalizes %s', (iss, expected) => {
    expect(normalizeIss(iss)).toBe(expected);
  });

  it('keeps lookalike hosts apart', () => {
    expect(normalizeIss('https://fhir.example.org.evil.test/interconnect-fhir-oauth/api/FHIR/R4')).not.toBe(
      base,
    );
    expect(normalizeIss('https://fhir.example.org:8443/interconnect-fhir-oauth/api/FHIR/R4')).not.toBe(base);
  });

  it.each([
    undefined,
    '',
    'not a url',
    'ftp://fhir.example.org/R4',
    'https://u:p@fhir.example.org/R4',
    'https://fhir.example.org/R4?x=1',
    'javascript:alert(1)',
  ])('refuses %s', (iss) => {
    expect(normalizeIss(iss)).toBeNull();
  });
});
