import type { Encounter, Patient } from 'fhir/r4';

import { displayName, providerLaunchPage } from './launch-page';

const patient: Patient = {
  resourceType: 'Patient',
  id: 'p1',
  name: [
    { use: 'usual', given: ['Cami'], family: 'Lopez' },
    { use: 'official', given: ['Camila', 'Maria'], family: 'Lopez' },
  ],
  birthDate: '1987-09-12',
  gender: 'female',
};
const encounter: Encounter = {
  resourceType: 'Encounter',
  id: 'e1',
  status: 'in-progress',
  class: { code: 'IMP', display: 'inpatient encounter' },
  period: { start: '2026-11-20T08:00:00Z' },
};

describe('provider launch page', () => {
  it('names the patient by their official name', () => {
    expect(displayName(patient.name)).toBe('Camila Maria Lopez');
    expect(displayName([{ text: 'Derrick Lin' }])).toBe('Derrick Lin');
    expect(displayName(undefined)).toBe('Unnamed patient');
  });

  it('shows the patient and the encounter, and our banner unless Epic shows its own', () => {
    const page = providerLaunchPage({
      fhirUser: 'Practitioner/x',
      patient,
      encounter,
      needPatientBanner: null,
      errors: [],
      hasPatientContext: true,
    });
    expect(page).toMatchObject({
      title: 'Camila Maria Lopez · Launch',
      showBanner: true,
      patient: { name: 'Camila Maria Lopez', birthDate: '1987-09-12', gender: 'female' },
      encounter: { kind: 'inpatient encounter', status: 'in-progress', period: 'since 2026-11-20T08:00:00Z' },
      noPatientContext: false,
    });
    expect(
      providerLaunchPage({
        fhirUser: null,
        patient,
        encounter: null,
        needPatientBanner: false,
        errors: [],
        hasPatientContext: true,
      }).showBanner,
    ).toBe(false);
  });

  it('says when Epic sent no patient', () => {
    const page = providerLaunchPage({
      fhirUser: null,
      patient: null,
      encounter: null,
      needPatientBanner: null,
      errors: [],
      hasPatientContext: false,
    });
    expect(page).toMatchObject({ title: 'Launch', patient: null, noPatientContext: true });
  });
});
