/**
 * Seeded FHIR R4 resources. Camila Lopez and Derrick Lin carry the IDs of Epic's published sandbox
 * patients (https://fhir.epic.com/Documentation?docId=testpatients); every other ID, identifier and value is
 * made up.
 */

export type FhirResource = { resourceType: string; id: string } & Record<string, unknown>;

export const SEED = {
  camila: 'erXuFYUfucBZaryVksYEcMg3',
  derrick: 'eq081-VQEgP8drUUqCWzHfw3',
  desiree: 'eFkDsPwll.0nGq6s3Dz0T1A3',
  practitioner: 'eFkPrcT1tN3r.Fhir.Usr00A3',
  nurse: 'eFkNrSe.0L1v1a.Bn3tt0000B3',
  /** Camila's open hospital encounter, for EHR launches. */
  camilaEncounter: 'eFkEnc.Cam1la.Hosp.000001',
} as const;

/** The `__epic.dstu2.patient` value for each seeded patient (made up: Epic's DSTU2 IDs differ from R4 IDs). */
export const DSTU2_IDS: Record<string, string> = {
  [SEED.camila]: 'TfkCamilaLopezDstu2.Id0000000000000000000000B',
  [SEED.derrick]: 'TfkDerrickLinDstu2.Id00000000000000000000000B',
  [SEED.desiree]: 'TfkDesireePowellDstu2.Id000000000000000000000B',
};

const MRN_SYSTEM = 'urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0';

function patient(id: string, family: string, given: string, gender: string, birthDate: string, mrn: string) {
  return {
    resourceType: 'Patient',
    id,
    meta: { versionId: '1', lastUpdated: '2025-01-15T10:00:00Z' },
    identifier: [
      { use: 'usual', type: { text: 'EPIC' }, system: MRN_SYSTEM, value: mrn },
      {
        use: 'usual',
        type: { text: 'FHIR' },
        system: 'http://open.epic.com/FHIR/StructureDefinition/patient-fhir-id',
        value: id,
      },
    ],
    active: true,
    name: [{ use: 'official', text: `${given} ${family}`, family, given: [given] }],
    telecom: [{ system: 'phone', value: '608-555-0100', use: 'home' }],
    gender,
    birthDate,
    deceasedBoolean: false,
    address: [
      {
        use: 'home',
        line: ['3268 West Johnson St.', 'Apt 117'],
        city: 'Garland',
        state: 'TX',
        postalCode: '75043',
        country: 'US',
      },
    ],
    communication: [
      {
        language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en', display: 'English' }] },
        preferred: true,
      },
    ],
    generalPractitioner: [
      { reference: `Practitioner/${SEED.practitioner}`, display: 'Physician Family Medicine, MD' },
    ],
    managingOrganization: {
      reference: 'Organization/enRyWnSP963FYDpoks4NHOA3',
      display: 'Fake Epic Hospital',
    },
  };
}

function practitioner(id: string, family: string, given: string, prefix: string, suffix?: string) {
  return {
    resourceType: 'Practitioner',
    id,
    identifier: [{ use: 'usual', type: { text: 'INTERNAL' }, value: `  ${id.slice(3, 9).toUpperCase()}` }],
    active: true,
    name: [
      {
        use: 'usual',
        text: `${given} ${family}${suffix ? `, ${suffix}` : ''}`,
        family,
        given: [given],
        prefix: [prefix],
        ...(suffix ? { suffix: [suffix] } : {}),
      },
    ],
    gender: 'unknown',
  };
}

function encounter(
  id: string,
  patientId: string,
  status: string,
  classCode: string,
  start: string,
  end?: string,
) {
  return {
    resourceType: 'Encounter',
    id,
    identifier: [
      { use: 'usual', system: 'urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8', value: id.slice(-6) },
    ],
    status,
    class: {
      system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
      code: classCode,
      display: classCode === 'IMP' ? 'inpatient encounter' : 'ambulatory',
    },
    type: [{ text: classCode === 'IMP' ? 'Hospital Encounter' : 'Office Visit' }],
    subject: { reference: `Patient/${patientId}` },
    participant: [
      {
        individual: {
          reference: `Practitioner/${SEED.practitioner}`,
          display: 'Physician Family Medicine, MD',
        },
      },
    ],
    period: { start, ...(end ? { end } : {}) },
  };
}

const LOINC = 'http://loinc.org';
const VITALS = {
  system: 'http://terminology.hl7.org/CodeSystem/observation-category',
  code: 'vital-signs',
  display: 'Vital Signs',
};
const LAB = {
  system: 'http://terminology.hl7.org/CodeSystem/observation-category',
  code: 'laboratory',
  display: 'Laboratory',
};

function observation(
  id: string,
  patientId: string,
  category: typeof VITALS,
  code: { code: string; display: string },
  value: number,
  unit: string,
  effective: string,
) {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [category], text: category.display }],
    code: { coding: [{ system: LOINC, ...code }], text: code.display },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: effective,
    issued: effective,
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

export function seedResources(): FhirResource[] {
  const resources: object[] = [
    patient(SEED.camila, 'Lopez', 'Camila', 'female', '1987-09-12', '203711'),
    patient(SEED.derrick, 'Lin', 'Derrick', 'male', '1973-06-03', '203713'),
    patient(SEED.desiree, 'Powell', 'Desiree', 'female', '1993-02-21', '203714'),
    practitioner(SEED.practitioner, 'Medicine', 'Family', 'Dr.', 'MD'),
    practitioner(SEED.nurse, 'Bennett', 'Olivia', 'Nurse', 'RN'),
    encounter(
      'eFkEnc.Cam1la.Offc.000001',
      SEED.camila,
      'finished',
      'AMB',
      '2024-03-04T15:00:00Z',
      '2024-03-04T15:30:00Z',
    ),
    encounter(
      'eFkEnc.Cam1la.Offc.000002',
      SEED.camila,
      'finished',
      'AMB',
      '2024-09-16T14:00:00Z',
      '2024-09-16T14:20:00Z',
    ),
    encounter(SEED.camilaEncounter, SEED.camila, 'in-progress', 'IMP', '2025-01-14T08:00:00Z'),
    encounter(
      'eFkEnc.D3rr1ck.Offc.00001',
      SEED.derrick,
      'finished',
      'AMB',
      '2024-11-02T16:00:00Z',
      '2024-11-02T16:25:00Z',
    ),
  ];
  // Twelve vital signs for Camila, so her Observation searches page (default page size 10).
  for (let month = 1; month <= 6; month++) {
    const date = `2024-${String(month * 2).padStart(2, '0')}-10T09:00:00Z`;
    resources.push(
      observation(
        `eFkObs.Cam.HR.${month}`,
        SEED.camila,
        VITALS,
        { code: '8867-4', display: 'Heart rate' },
        68 + month,
        '/min',
        date,
      ),
      observation(
        `eFkObs.Cam.WT.${month}`,
        SEED.camila,
        VITALS,
        { code: '29463-7', display: 'Body weight' },
        64 + month / 2,
        'kg',
        date,
      ),
    );
  }
  resources.push(
    observation(
      'eFkObs.Cam.A1C.1',
      SEED.camila,
      LAB,
      { code: '4548-4', display: 'Hemoglobin A1c' },
      5.6,
      '%',
      '2024-03-04T15:10:00Z',
    ),
    observation(
      'eFkObs.Der.A1C.1',
      SEED.derrick,
      LAB,
      { code: '4548-4', display: 'Hemoglobin A1c' },
      7.2,
      '%',
      '2024-11-02T16:10:00Z',
    ),
    observation(
      'eFkObs.Der.HR.1',
      SEED.derrick,
      VITALS,
      { code: '8867-4', display: 'Heart rate' },
      81,
      '/min',
      '2024-11-02T16:05:00Z',
    ),
  );
  return resources as FhirResource[];
}
