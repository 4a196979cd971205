import { fhirBaseKey, sameFhirBase } from './connections.types';

describe('fhirBaseKey', () => {
  it('drops trailing slashes and lower-cases the URL', () => {
    expect(fhirBaseKey('https://FHIR.Example.org/api/FHIR/R4//')).toBe(
      'https://fhir.example.org/api/fhir/r4',
    );
  });

  it('keeps a base that is already normal', () => {
    expect(fhirBaseKey('https://fhir.example.org/api/fhir/r4')).toBe('https://fhir.example.org/api/fhir/r4');
  });

  it('keeps inner slashes and other hosts apart', () => {
    expect(fhirBaseKey('https://fhir.example.org.evil.test/R4')).not.toBe(
      fhirBaseKey('https://fhir.example.org/R4'),
    );
  });
});

describe('sameFhirBase', () => {
  it('compares by fhirBaseKey', () => {
    expect(sameFhirBase('https://FHIR.example.org/R4/', 'https://fhir.example.org/r4')).toBe(true);
    expect(sameFhirBase('https://fhir.example.org/R4', 'https://fhir.example.org/R5')).toBe(false);
    expect(sameFhirBase(null, 'https://fhir.example.org/R4')).toBe(false);
  });
});
