import type { Bundle, Observation, Patient } from 'fhir/r4';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { ConnectionState } from 'src/connections/connections.read-model';
import type { OwnConnectionContact } from 'src/connection-health/own-connection-notices.service';
import type { StoredCredential } from 'src/connections/connections.types';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { Role } from 'src/users/user.types';

import {
  EndedCredential,
  endedAccount,
  isEnded,
  liveAccount,
  observationLine,
  ownConnectionSection,
  patientContext,
  patientPage,
  patientSummary,
  recordFailure,
} from './patient-page';

const now = new Date('2026-11-20T12:00:00Z');
const epicOrg = {
  slug: 'general clinic',
  fhirBaseUrl: 'https://fhir.epic.com/api/FHIR/R4',
  fhirServerName: null,
};
const cernerOrg = { slug: 'north', fhirBaseUrl: 'https://fhir.example.test/r4', fhirServerName: 'Cerner' };
const epic = patientContext(epicOrg as OrganizationView, now, 30 * 60_000);
const cerner = patientContext(cernerOrg as OrganizationView, now, 30 * 60_000);

const credential = (changes: Partial<StoredCredential> = {}): StoredCredential =>
  ({
    id: 'c1',
    patientId: 'p1',
    expiresAt: new Date('2026-11-20T13:00:00Z'),
    refreshable: true,
    refreshExpiresAt: null,
    endedAt: null,
    lastError: null,
    createdAt: new Date('2026-11-01T09:00:00Z'),
    ...changes,
  }) as StoredCredential;

const patient: Patient = {
  resourceType: 'Patient',
  name: [{ given: ['Camila'], family: 'Lopez' }],
  birthDate: '1987-09-12',
};
const observation = (text: string, date: string, value?: Observation['valueQuantity']): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text },
  effectiveDateTime: date,
  valueQuantity: value,
});
const bundle = (...observations: Observation[]): Bundle<Observation> => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: observations.map((resource) => ({ resource })),
});
const ok = <T>(value: T) => ({ ok: true as const, value });
const failed = (code: ErrorCode, message: string) => ({
  ok: false as const,
  error: new DomainError(code, message),
});

describe('patient page', () => {
  it("connects again through the organization's patient launch, and names its server", () => {
    expect(epic).toMatchObject({ reconnect: '/fhir/epic-connect?org=general%20clinic' });
    expect(epic.server.name).toBe('Epic');
    expect(cerner.server.name).toBe('Cerner');
    expect(patientContext(null, now, 0)).toMatchObject({ reconnect: null, server: { name: 'Epic' } });
  });

  it('words an observation with its value and day', () => {
    expect(
      observationLine(observation('Heart rate', '2026-11-19T08:00:00Z', { value: 72, unit: '/min' })),
    ).toBe('Heart rate: 72 /min (2026-11-19)');
    expect(
      observationLine({
        ...observation('', ''),
        code: { coding: [{ display: 'Smoking status' }] },
        valueString: 'Never',
      }),
    ).toBe('Smoking status: Never');
    expect(observationLine({ resourceType: 'Observation', status: 'final', code: {} })).toBe('Observation');
  });

  it('summarises the record, newest observation first', () => {
    const summary = patientSummary(
      {
        patient: ok(patient),
        observations: ok(
          bundle(observation('Older', '2026-11-01T00:00:00Z'), observation('Newer', '2026-11-19T00:00:00Z')),
        ),
      },
      epic.server,
    );
    expect(summary).toEqual({
      name: 'Camila Lopez',
      birthDate: '1987-09-12',
      observations: ['Newer (2026-11-19)', 'Older (2026-11-01)'],
    });
    expect(patientSummary(null, epic.server)).toEqual({ observations: [] });
  });

  it('keeps what was read before a failure, and words the failure for the server', () => {
    const read = {
      patient: ok(patient),
      observations: failed(ErrorCode.EpicUnavailable, 'Epic could not be reached.'),
    };
    expect(patientSummary(read, cerner.server)).toEqual({
      name: 'Camila Lopez',
      birthDate: '1987-09-12',
      observations: [],
      error: 'Cerner could not be reached.',
    });
    expect(recordFailure(read)?.code).toBe(ErrorCode.EpicUnavailable);
    const refused = {
      patient: failed(ErrorCode.ReauthenticationRequired, 'Sign in again.'),
      observations: null,
    };
    expect(recordFailure(refused)?.code).toBe(ErrorCode.ReauthenticationRequired);
    expect(patientSummary(refused, epic.server)).toEqual({ observations: [], error: 'Sign in again.' });
    expect(recordFailure(null)).toBeNull();
  });

  it('shows a live connection with its state and its last failure', () => {
    const account = liveAccount(
      credential({ lastError: 'Epic could not be reached.' }),
      { patient: ok(patient), observations: ok(bundle()) },
      cerner,
    );
    expect(account).toMatchObject({
      id: 'c1',
      state: ConnectionState.Error,
      badge: { label: '⚠ Error' },
      lastError: 'Cerner could not be reached.',
      since: '2026-11-01T09:00:00.000Z',
      summary: { name: 'Camila Lopez' },
    });
    expect(account.ended).toBeUndefined();
    const expiring = liveAccount(
      credential({ refreshable: false, expiresAt: new Date('2026-11-20T12:10:00Z') }),
      null,
      epic,
    );
    expect(expiring.state).toBe(ConnectionState.Expiring);
  });

  it('shows a connection the server ended as expired, with the reason and a way back', () => {
    const ended = credential({
      endedAt: new Date('2026-11-20T11:00:00Z'),
      lastError: 'Epic refused the refresh (invalid_grant).',
      refreshable: false,
    });
    expect(isEnded(ended)).toBe(true);
    expect(isEnded(credential())).toBe(false);
    expect(endedAccount(ended as EndedCredential, cerner)).toEqual({
      id: 'c1',
      state: ConnectionState.Expired,
      badge: { label: '❌ Expired', cssClass: 'bad' },
      summary: { observations: [] },
      ended: {
        at: '2026-11-20T11:00:00.000Z',
        reason: 'Cerner refused the refresh (invalid_grant).',
        reconnect: '/fhir/epic-connect?org=north',
      },
      since: '2026-11-01T09:00:00.000Z',
    });
  });

  it('is titled "My connected accounts"', () => {
    const user = {
      id: 'u1',
      email: 'p@example.test',
      role: Role.Patient,
      organizationId: 'o1',
      mustChangePassword: false,
    };
    const own = ownConnectionSection({
      notices: [],
      contact: { address: null, source: null, confirmed: false, mode: 'immediate', mailConfigured: false },
      action: '/launch/patient/notifications',
      patient: true,
    });
    expect(patientPage({ user, csrfToken: 'csrf' }, epic.server, [], own)).toEqual({
      title: 'My connected accounts',
      user,
      csrfToken: 'csrf',
      accounts: [],
      server: epic.server,
      own,
    });
  });
});
const contact = (over: Partial<OwnConnectionContact> = {}): OwnConnectionContact => ({
  address: 'pat@example.org',
  source: 'entered',
  confirmed: true,
  mode: 'immediate',
  mailConfigured: true,
  ...over,
});
const notice = {
  id: 'n1',
  organizationId: 'o1',
  organizationName: "St Mary's",
  endedAt: '2026-12-01T00:00:00.000Z',
  serverName: 'Epic',
  reconnectUrl: '/fhir/epic-connect?org=st-marys',
};

describe('ownConnectionSection', () => {
  it('shows the stored address and choice, and the notices', () => {
    const section = ownConnectionSection({
      notices: [notice],
      contact: contact({ source: 'id_token' }),
      action: '/launch/patient/notifications',
      patient: true,
    });
    expect(section).toMatchObject({
      contactEmail: 'pat@example.org',
      fromClaim: true,
      emailOn: true,
      error: null,
      saved: false,
      notices: [{ organizationName: "St Mary's", patient: true, reconnectUrl: notice.reconnectUrl }],
    });
  });

  it('says an entered address waits for its confirmation (only when email is sent at all)', () => {
    const section = (over: Partial<OwnConnectionContact>) =>
      ownConnectionSection({ notices: [], contact: contact(over), action: '/x', patient: true });
    expect(section({ confirmed: false }).awaitingConfirmation).toBe(true);
    expect(section({ confirmed: true }).awaitingConfirmation).toBe(false);
    expect(section({ confirmed: false, mailConfigured: false }).awaitingConfirmation).toBe(false);
    expect(section({ confirmed: false, address: null }).awaitingConfirmation).toBe(false);
  });

  it('keeps what was entered after an error, and says so', () => {
    const section = ownConnectionSection(
      { notices: [], contact: contact(), action: '/x', patient: false },
      { contactEmail: 'not an address', ownConnection: 'off', error: 'That is not…', field: 'contactEmail' },
    );
    expect(section).toMatchObject({
      contactEmail: 'not an address',
      emailOn: false,
      fromClaim: false,
      error: 'That is not…',
      errorField: 'contactEmail',
      saved: false,
    });
  });

  it('an empty address and email off', () => {
    const section = ownConnectionSection(
      {
        notices: [],
        contact: contact({ address: null, source: null, mode: 'off' }),
        action: '/x',
        patient: true,
      },
      { saved: true },
    );
    expect(section).toMatchObject({ contactEmail: '', fromClaim: false, emailOn: false, saved: true });
  });
});
