import type { Encounter, HumanName, Patient } from 'fhir/r4';

export interface ProviderLaunchPage {
  title: string;
  clinician: string | null;
  /** Epic asked the app to show its own patient banner (need_patient_banner). */
  showBanner: boolean;
  patient: { name: string; birthDate: string; gender: string; id: string } | null;
  encounter: { status: string; kind: string; period: string; id: string } | null;
  errors: string[];
  noPatientContext: boolean;
}

/** "Camila Maria Lopez": the official (else first) name, given names then family. */
export function displayName(names: HumanName[] | undefined): string {
  const name = names?.find((n) => n.use === 'official') ?? names?.[0];
  if (!name) return 'Unnamed patient';
  if (name.text) return name.text;
  return [...(name.given ?? []), name.family].filter(Boolean).join(' ') || 'Unnamed patient';
}

/** The provider page after an EHR launch: pure, from the FHIR resources read with the provider's token. */
export function providerLaunchPage(input: {
  fhirUser: string | null;
  patient: Patient | null;
  encounter: Encounter | null;
  needPatientBanner: boolean | null;
  errors: string[];
  hasPatientContext: boolean;
}): ProviderLaunchPage {
  const { patient, encounter } = input;
  return {
    title: patient ? `${displayName(patient.name)} · Launch` : 'Launch',
    clinician: input.fhirUser,
    // Epic sends "false" when its own banner is on screen; without a value, show ours.
    showBanner: input.needPatientBanner !== false,
    patient: patient
      ? {
          id: patient.id ?? '',
          name: displayName(patient.name),
          birthDate: patient.birthDate ?? 'unknown',
          gender: patient.gender ?? 'unknown',
        }
      : null,
    encounter: encounter
      ? {
          id: encounter.id ?? '',
          status: encounter.status,
          kind: encounter.class?.display ?? encounter.class?.code ?? '—',
          period: encounter.period?.start ? `since ${encounter.period.start}` : '—',
        }
      : null,
    errors: input.errors,
    noPatientContext: !input.hasPatientContext,
  };
}
