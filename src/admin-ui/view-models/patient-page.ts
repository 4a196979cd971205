import type { Bundle, Observation, Patient } from 'fhir/r4';

import type { DomainError } from 'src/common/errors/domain-error';
import type {
  OwnConnectionContact,
  OwnConnectionNotice,
} from 'src/connection-health/own-connection-notices.service';
import { deriveConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionState } from 'src/connections/connections.read-model';
import type { StoredCredential } from 'src/connections/connections.types';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { EPIC_LABEL, ServerLabel, serverLabel, speakOfServer } from 'src/organizations/organization.types';

import { StateBadge, stateBadge } from './connection-row';
import { displayName } from './launch-page';
import type { Viewer } from './page';
import type { ReadOutcome } from './read-outcome';

/** What a patient's connection shows of their record, read with their own token. */
export interface PatientSummary {
  name?: string;
  birthDate?: string;
  /** "Heart rate: 72 /min (2026-11-20)", newest first. */
  observations: string[];
  /** Why the record could not be read (the account's state still shows). */
  error?: string;
}

/** One connected account on "My connected accounts". */
export interface PatientAccount {
  /** The credential's id (its Disconnect form posts to it). */
  id: string;
  state: ConnectionState;
  badge: StateBadge;
  summary: PatientSummary;
  /** Ended by the server (its tokens are gone): when, why, and where to connect again. */
  ended?: { at: string; reason: string | null; reconnect: string | null };
  /** A live connection's last failure, in the server's name. */
  lastError?: string | null;
  /** When it was connected (ISO). */
  since: string;
}

/** `GET /launch/patient`: "My connected accounts". */
export interface PatientPage extends Viewer {
  title: string;
  accounts: PatientAccount[];
  /** The patient's organization's server ("Epic", the administrator's name, "the EHR"). */
  server: ServerLabel;
  /** Connections that ended (until they connect again) and the email form. */
  own: OwnConnectionSection;
}

/** What a patient's page needs to know about where their connections lead. */
export interface PatientContext {
  now: Date;
  /** EXPIRY_WARNING_MINUTES, in ms: a connection ending sooner is "expiring". */
  warningMs: number;
  server: ServerLabel;
  /** Where to connect again: the organization's patient launch (null without an organization). */
  reconnect: string | null;
}

/** The context of a patient of `org` (null: a patient without an organization, called Epic's). */
export function patientContext(org: OrganizationView | null, now: Date, warningMs: number): PatientContext {
  return {
    now,
    warningMs,
    server: org ? serverLabel(org) : EPIC_LABEL,
    reconnect: org ? `/fhir/epic-connect?org=${encodeURIComponent(org.slug)}` : null,
  };
}

/**
 * What was read of the patient's record with their own token: their Patient, then, if that
 * worked, their latest Observations.
 */
export interface PatientRecordRead {
  patient: ReadOutcome<Patient>;
  /** Null when the Patient could not be read (the search was not tried). */
  observations: ReadOutcome<Bundle<Observation>> | null;
}

/** Why the record could not be read (the first failure), or null. */
export function recordFailure(read: PatientRecordRead | null): DomainError | null {
  if (!read) return null;
  if (!read.patient.ok) return read.patient.error;
  return read.observations && !read.observations.ok ? read.observations.error : null;
}

/** "Heart rate: 72 /min (2026-11-20)": the code's text, the value, and the day. */
export function observationLine(o: Observation): string {
  const value = o.valueQuantity
    ? `${o.valueQuantity.value} ${o.valueQuantity.unit ?? ''}`.trim()
    : (o.valueString ?? '');
  const name = o.code.text ?? o.code.coding?.[0]?.display ?? 'Observation';
  return `${name}${value ? `: ${value}` : ''}${o.effectiveDateTime ? ` (${o.effectiveDateTime.slice(0, 10)})` : ''}`;
}

/**
 * The summary of what was read (null: the credential names no patient, so nothing was read). What
 * was read before a failure still shows, beside the failure.
 */
export function patientSummary(read: PatientRecordRead | null, server: ServerLabel): PatientSummary {
  const summary: PatientSummary = { observations: [] };
  if (read?.patient.ok) {
    summary.name = displayName(read.patient.value.name);
    summary.birthDate = read.patient.value.birthDate;
  }
  if (read?.observations?.ok) {
    summary.observations = (read.observations.value.entry ?? [])
      .flatMap((entry) => (entry.resource ? [entry.resource] : []))
      .sort((a, b) => (b.effectiveDateTime ?? '').localeCompare(a.effectiveDateTime ?? ''))
      .map(observationLine);
  }
  const failure = recordFailure(read);
  if (failure) summary.error = speakOfServer(failure.message, server);
  return summary;
}

/** Stored reasons and errors are worded for Epic; another server is called by its name. */
const said = (message: string | null, server: ServerLabel): string | null =>
  message === null ? null : speakOfServer(message, server);

/** A credential the server ended for good. */
export type EndedCredential = StoredCredential & { endedAt: Date };

export const isEnded = (credential: StoredCredential): credential is EndedCredential =>
  credential.endedAt !== null;

/** A connection the server ended (tokens cleared, reason kept): expired, with the reason and a way back. */
export function endedAccount(credential: EndedCredential, context: PatientContext): PatientAccount {
  const state = deriveConnectionState(
    {
      configured: true,
      credential: null,
      lastError: credential.lastError,
      tokenExpiry: credential.expiresAt,
    },
    context.now,
    context.warningMs,
  );
  return {
    id: credential.id,
    badge: stateBadge(state),
    state,
    summary: { observations: [] },
    ended: {
      at: credential.endedAt.toISOString(),
      reason: said(credential.lastError, context.server),
      reconnect: context.reconnect,
    },
    since: credential.createdAt.toISOString(),
  };
}

/** A live connection: its state from its tokens, and what was read with them. */
export function liveAccount(
  credential: StoredCredential,
  read: PatientRecordRead | null,
  context: PatientContext,
): PatientAccount {
  const state = deriveConnectionState(
    {
      configured: true,
      credential: {
        expiresAt: credential.expiresAt,
        refreshable: credential.refreshable,
        refreshExpiresAt: credential.refreshExpiresAt,
      },
      lastError: credential.lastError,
      tokenExpiry: credential.expiresAt,
    },
    context.now,
    context.warningMs,
  );
  return {
    id: credential.id,
    badge: stateBadge(state),
    state,
    summary: patientSummary(read, context.server),
    lastError: said(credential.lastError, context.server),
    since: credential.createdAt.toISOString(),
  };
}

export function patientPage(
  viewer: Viewer,
  server: ServerLabel,
  accounts: PatientAccount[],
  own: OwnConnectionSection,
): PatientPage {
  return { title: 'My connected accounts', ...viewer, accounts, server, own };
}

/** The form's state after a post: what was entered (kept on an error), the error, or saved. */
export interface OwnConnectionForm {
  contactEmail?: string;
  ownConnection?: string;
  error?: string;
  field?: 'contactEmail' | 'ownConnection';
  saved?: boolean;
}

/**
 * The part of a provider's or patient's page about their own connections: the ones that ended
 * (until they connect again) and the email form (address and whether to be emailed).
 */
export interface OwnConnectionSection {
  notices: (OwnConnectionNotice & { patient: boolean })[];
  /** Where the form posts. */
  action: string;
  /** The address shown in the field: what they entered (after an error), else the stored one. */
  contactEmail: string;
  /** The stored address came from Epic's identity token (not typed by them). */
  fromClaim: boolean;
  /** An entered address not confirmed yet (double opt-in): nothing is sent to it until its link is opened. */
  awaitingConfirmation: boolean;
  emailOn: boolean;
  mailConfigured: boolean;
  error: string | null;
  errorField: string | null;
  saved: boolean;
}

export function ownConnectionSection(
  input: {
    notices: OwnConnectionNotice[];
    contact: OwnConnectionContact;
    action: string;
    patient: boolean;
  },
  form: OwnConnectionForm = {},
): OwnConnectionSection {
  const { contact } = input;
  return {
    notices: input.notices.map((n) => ({ ...n, patient: input.patient })),
    action: input.action,
    contactEmail: form.error ? (form.contactEmail ?? '') : (contact.address ?? ''),
    fromClaim: !form.error && contact.source === 'id_token' && contact.address !== null,
    awaitingConfirmation:
      !form.error && contact.mailConfigured && contact.address !== null && !contact.confirmed,
    emailOn: form.error ? form.ownConnection !== 'off' : contact.mode !== 'off',
    mailConfigured: contact.mailConfigured,
    error: form.error ?? null,
    errorField: form.field ?? null,
    saved: form.saved === true && !form.error,
  };
}
