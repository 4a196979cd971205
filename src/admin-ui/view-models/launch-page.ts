import type { Encounter, HumanName, Patient } from 'fhir/r4';

import { type DomainError, ErrorCode } from 'src/common/errors/domain-error';
import type { StoredCredential } from 'src/connections/connections.types';
import { ServerLabel, speakOfServer } from 'src/organizations/organization.types';

import type { Viewer } from './page';
import type { OwnConnectionSection } from './patient-page';
import type { ReadOutcome } from './read-outcome';

/** `GET /launch/provider/:credentialId`: the context of a provider's EHR launch. */
export interface ProviderLaunchPage extends Viewer {
  title: string;
  /** The server that launched the app: "Epic", the name its administrator gave it, or "the EHR". */
  server: ServerLabel;
  clinician: string | null;
  /** Epic asked the app to show its own patient banner (need_patient_banner). */
  showBanner: boolean;
  patient: { name: string; birthDate: string; gender: string; id: string } | null;
  encounter: { status: string; kind: string; period: string; id: string } | null;
  /** What could not be read, one sentence each (the rest of the page still shows). */
  errors: string[];
  noPatientContext: boolean;
  /** Their connections that ended (until they launch again) and the email form. */
  own: OwnConnectionSection | null;
}

/** The launch context a provider's credential holds. */
export type ProviderLaunch = Pick<StoredCredential, 'fhirUser' | 'needPatientBanner' | 'patientId'>;

/** "Camila Maria Lopez": the official (else first) name, given names then family. */
export function displayName(names: HumanName[] | undefined): string {
  const name = names?.find((n) => n.use === 'official') ?? names?.[0];
  if (!name) return 'Unnamed patient';
  if (name.text) return name.text;
  return [...(name.given ?? []), name.family].filter(Boolean).join(' ') || 'Unnamed patient';
}

/**
 * What the provider page says in place of a resource it could not read: a launch without
 * (working) tokens has ended; any other failure in the server's own name.
 */
export function launchReadError(error: DomainError, server: ServerLabel): string {
  return error.code === ErrorCode.ReauthenticationRequired || error.code === ErrorCode.NotConnected
    ? `This launch has ended. Open the app from ${server.name} again.`
    : speakOfServer(error.message, server);
}

/**
 * The provider page after an EHR launch: pure, from the launch context and what was read with the
 * provider's token (`patient` and `encounter` are null when the launch named none).
 */
export function providerLaunchPage(
  viewer: Viewer,
  input: {
    server: ServerLabel;
    launch: ProviderLaunch;
    patient: ReadOutcome<Patient> | null;
    encounter: ReadOutcome<Encounter> | null;
    own?: OwnConnectionSection | null;
  },
): ProviderLaunchPage {
  const { server, launch } = input;
  const patient = input.patient?.ok ? input.patient.value : null;
  const encounter = input.encounter?.ok ? input.encounter.value : null;
  const errors = [input.patient, input.encounter].flatMap((read) =>
    read && !read.ok ? [launchReadError(read.error, server)] : [],
  );
  return {
    title: patient ? `${displayName(patient.name)} · Launch` : 'Launch',
    ...viewer,
    server,
    clinician: launch.fhirUser,
    // Epic sends "false" when its own banner is on screen; without a value, show ours.
    showBanner: launch.needPatientBanner !== false,
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
    errors,
    noPatientContext: launch.patientId === null,
    own: input.own ?? null,
  };
}
