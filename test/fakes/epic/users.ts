import { createHash } from 'node:crypto';

import { SEED } from './fhir-data';
import type { FakeEpicClient, FakeEpicUser } from './types';

/** Who logs in when neither the test nor the request picks a user: one per audience. */
export function defaultUser(client: FakeEpicClient): FakeEpicUser {
  return client.audience === 'patient'
    ? { kind: 'patient', patientId: SEED.camila }
    : { kind: 'practitioner', practitionerId: SEED.practitioner };
}

/** Epic's `sub` is an opaque per-user id, not the FHIR id. */
export function subjectOf(user: FakeEpicUser): string {
  return createHash('sha256').update(userKey(user)).digest('base64url').slice(0, 40);
}

/** `patient:<id>` or `practitioner:<id>`: a user in a header or a form field. */
export function userKey(user: FakeEpicUser): string {
  return user.kind === 'patient' ? `patient:${user.patientId}` : `practitioner:${user.practitionerId}`;
}

export function parseUserKey(value: string | string[] | undefined): FakeEpicUser | undefined {
  if (typeof value !== 'string') return undefined;
  const [kind, id] = [value.slice(0, value.indexOf(':')), value.slice(value.indexOf(':') + 1)];
  if (kind === 'patient' && id) return { kind: 'patient', patientId: id };
  if (kind === 'practitioner' && id) return { kind: 'practitioner', practitionerId: id };
  return undefined;
}
