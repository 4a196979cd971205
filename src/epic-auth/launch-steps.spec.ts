import { fhirUserId } from './launch-steps';

describe('fhirUserId', () => {
  it('reads the id of a relative or absolute reference of the type', () => {
    expect(fhirUserId('Practitioner/abc', 'Practitioner')).toBe('abc');
    expect(
      fhirUserId('https://fhir.example.org/api/FHIR/R4/Patient/e63wRTbPfr1p8UW81d8Seiw3', 'Patient'),
    ).toBe('e63wRTbPfr1p8UW81d8Seiw3');
  });

  it('refuses another type, a type inside a word, a missing id and a longer path', () => {
    expect(fhirUserId('Patient/abc', 'Practitioner')).toBeNull();
    expect(fhirUserId('https://fhir.example.org/RelatedPerson/Patient', 'Patient')).toBeNull();
    expect(fhirUserId('https://fhir.example.org/NotPatient/abc', 'Patient')).toBeNull();
    expect(fhirUserId('Patient/', 'Patient')).toBeNull();
    expect(fhirUserId('Patient/abc/_history/1', 'Patient')).toBeNull();
  });
});
