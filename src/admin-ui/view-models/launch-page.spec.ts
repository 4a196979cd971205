import type { Encounter, Patient } from 'fhir/r4';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { EPIC_LABEL, serverLabel } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';

import { displayName, launchReadError, providerLaunchPage } from './launch-page';

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

  const viewer = {
    user: {
      id: 'u1',
      email: 'p@example.test',
      role: Role.Provider,
      organizationId: 'o1',
      mustChangePassword: false,
    },
    csrfToken: 'csrf',
  };
  const launch = { fhirUser: 'Practitioner/x', needPatientBanner: null, patientId: 'p1' };
  const ok = <T>(value: T) => ({ ok: true as const, value });
  const failed = (code: ErrorCode, message = 'Epic refused the request.') => ({
    ok: false as const,
    error: new DomainError(code, message),
  });

  it('shows the patient and the encounter, and our banner unless Epic shows its own', () => {
    const page = providerLaunchPage(viewer, {
      server: EPIC_LABEL,
      launch,
      patient: ok(patient),
      encounter: ok(encounter),
    });
    expect(page).toMatchObject({
      title: 'Camila Maria Lopez · Launch',
      user: viewer.user,
      csrfToken: 'csrf',
      server: EPIC_LABEL,
      clinician: 'Practitioner/x',
      showBanner: true,
      patient: { name: 'Camila Maria Lopez', birthDate: '1987-09-12', gender: 'female' },
      encounter: { kind: 'inpatient encounter', status: 'in-progress', period: 'since 2026-11-20T08:00:00Z' },
      errors: [],
      noPatientContext: false,
    });
    expect(
      providerLaunchPage(viewer, {
        server: EPIC_LABEL,
        launch: { ...launch, fhirUser: null, needPatientBanner: false },
        patient: ok(patient),
        encounter: null,
      }).showBanner,
    ).toBe(false);
  });

  it('says when Epic sent no patient', () => {
    const page = providerLaunchPage(viewer, {
      server: EPIC_LABEL,
      launch: { fhirUser: null, needPatientBanner: null, patientId: null },
      patient: null,
      encounter: null,
    });
    expect(page).toMatchObject({ title: 'Launch', patient: null, noPatientContext: true, errors: [] });
  });

  it("shows what it could not read in place: an ended launch, or the server's own words", () => {
    const cerner = serverLabel({ fhirBaseUrl: 'https://fhir.example.test/r4', fhirServerName: 'Cerner' });
    const page = providerLaunchPage(viewer, {
      server: cerner,
      launch,
      patient: failed(ErrorCode.ReauthenticationRequired),
      encounter: failed(ErrorCode.FhirRequestFailed, 'Epic says: Encounter not found.'),
    });
    expect(page.patient).toBeNull();
    expect(page.title).toBe('Launch');
    expect(page.errors).toEqual([
      'This launch has ended. Open the app from Cerner again.',
      'Cerner says: Encounter not found.',
    ]);
    expect(launchReadError(new DomainError(ErrorCode.NotConnected, 'x'), EPIC_LABEL)).toBe(
      'This launch has ended. Open the app from Epic again.',
    );
    expect(
      launchReadError(new DomainError(ErrorCode.EpicUnavailable, 'Epic is unavailable.'), EPIC_LABEL),
    ).toBe('Epic is unavailable.');
  });
});
