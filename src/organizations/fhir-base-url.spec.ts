import { checkFhirBaseUrl, slugify } from './fhir-base-url';

describe('checkFhirBaseUrl', () => {
  const dev = { production: false };
  const prod = { production: true };

  it.each([
    [
      'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4/',
      'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4',
    ],
    ['https://EHR.Example.org/fhir', 'https://ehr.example.org/fhir'],
  ])('accepts and normalises %s', (input, expected) => {
    expect(checkFhirBaseUrl(input, prod)).toEqual({ ok: true, url: expected });
  });

  it('accepts http on loopback outside production only', () => {
    expect(checkFhirBaseUrl('http://127.0.0.1:4000/fhir', dev)).toEqual({
      ok: true,
      url: 'http://127.0.0.1:4000/fhir',
    });
    expect(checkFhirBaseUrl('http://localhost:4000/fhir', dev).ok).toBe(true);
    expect(checkFhirBaseUrl('http://127.0.0.1:4000/fhir', prod)).toEqual({
      ok: false,
      message: 'fhirBaseUrl must use https in production',
    });
  });

  it.each([
    ['http://fhir.example.org/R4', 'must use https'],
    ['ftp://fhir.example.org/R4', 'must use https'],
    ['not a url', 'absolute URL'],
    ['https://user:pw@fhir.example.org/R4', 'credentials'],
    ['https://fhir.example.org/R4?x=1', 'query string'],
    ['http://127.0.0.1.evil.example/R4', 'must use https'],
  ])('rejects %s', (input, message) => {
    const result = checkFhirBaseUrl(input, dev);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain(message);
  });
});

describe('slugify', () => {
  it('makes URL-safe slugs', () => {
    expect(slugify("St. Mary's Hôpital — North")).toBe('st-marys-hopital-north');
    expect(slugify('  ---  ')).toBe('');
  });
});
