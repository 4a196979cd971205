import { Inject, Injectable } from '@nestjs/common';

import { ErrorCode } from 'src/common/errors/domain-error';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import {
  ContactSaveOutcome,
  OwnConnectionContactInput,
  OwnConnectionNoticesService,
} from 'src/connection-health/own-connection-notices.service';
import type { StoredCredential } from 'src/connections/connections.types';
import { TokenStoreService } from 'src/connections/token-store.service';
import { ConnectionLifecycleService } from 'src/epic-auth/connection-lifecycle.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { serverLabel } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ProviderLaunchPage, providerLaunchPage } from '../view-models/launch-page';
import type { Viewer } from '../view-models/page';
import {
  endedAccount,
  isEnded,
  liveAccount,
  OwnConnectionForm,
  OwnConnectionSection,
  ownConnectionSection,
  PatientAccount,
  PatientContext,
  patientContext,
  PatientPage,
  patientPage,
  PatientRecordRead,
  recordFailure,
} from '../view-models/patient-page';
import { readOutcome } from '../view-models/read-outcome';

/**
 * The pages providers and patients see after a launch, read with their own tokens (server-side).
 * A FHIR read that fails for a reason the page can explain is shown in its place (ReadOutcome).
 */
@Injectable()
export class LaunchPagesBuilder {
  constructor(
    private readonly fhir: FhirClientService,
    private readonly tokens: TokenStoreService,
    private readonly organizations: OrganizationsService,
    private readonly lifecycle: ConnectionLifecycleService,
    private readonly ownConnections: OwnConnectionNoticesService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** A provider's launch: `launch` is their own credential (@OwnCredential checked it). */
  async providerPage(
    viewer: Viewer,
    launch: StoredCredential,
    form?: OwnConnectionForm,
  ): Promise<ProviderLaunchPage> {
    const client = this.fhir.forCredential(launch.id);
    // The server that launched the app: "Epic", the name its administrator gave it, or "the EHR".
    const server = serverLabel(await this.organizations.get(launch.organizationId));
    const { patientId, encounterId } = launch;
    const patient = patientId ? await readOutcome(() => client.read('Patient', patientId)) : null;
    const encounter = encounterId ? await readOutcome(() => client.read('Encounter', encounterId)) : null;
    const own = await this.ownSection(viewer.user, `/launch/provider/${launch.id}/notifications`, form);
    return providerLaunchPage(viewer, { server, launch, patient, encounter, own });
  }

  /** "My connected accounts": each of the patient's connections with its state and their summary. */
  async patientPage(viewer: Viewer, form?: OwnConnectionForm): Promise<PatientPage> {
    const { user } = viewer;
    // The patient's organization: its server's name ("Epic", the administrator's name, "the EHR").
    const org = user.organizationId ? await this.organizations.get(user.organizationId) : null;
    const context = patientContext(org, new Date(), this.config.env.EXPIRY_WARNING_MINUTES * 60_000);
    const accounts: PatientAccount[] = [];
    for (const credential of await this.tokens.listUserCredentials(user.id)) {
      accounts.push(await this.patientAccount(user, credential, context));
    }
    const own = await this.ownSection(user, '/launch/patient/notifications', form);
    return patientPage(viewer, context.server, accounts, own);
  }

  /** Saves the email form of a provider's or patient's page (bad input: nothing changes, the error says why). */
  saveOwnContact(user: AuthUser, input: OwnConnectionContactInput): Promise<ContactSaveOutcome> {
    return this.ownConnections.saveContact(user, input);
  }

  /** Their ended connections (until they connect again) and the email form. */
  private async ownSection(
    user: AuthUser,
    action: string,
    form?: OwnConnectionForm,
  ): Promise<OwnConnectionSection> {
    const [notices, contact] = await Promise.all([
      this.ownConnections.openNotices(user),
      this.ownConnections.contact(user),
    ]);
    return ownConnectionSection({ notices, contact, action, patient: user.role === Role.Patient }, form);
  }

  /**
   * Disconnects one of the patient's own connections (@OwnCredential checked it is theirs): its
   * tokens are revoked at the server where it offers revocation, then deleted (EpicAuth).
   */
  disconnectPatientAccount(user: AuthUser, credentialId: string): Promise<void> {
    return this.lifecycle.disconnectUserCredential(user, user.id, credentialId);
  }

  private async patientAccount(
    user: AuthUser,
    credential: StoredCredential,
    context: PatientContext,
  ): Promise<PatientAccount> {
    if (isEnded(credential)) return endedAccount(credential, context);
    const read = await this.readRecord(credential);
    if (recordFailure(read)?.code === ErrorCode.ReauthenticationRequired) {
      // The server refused the grant during this very visit: show it as ended at once.
      const latest = await this.tokens.findUserCredential(user.id, credential.id);
      if (latest && isEnded(latest)) return endedAccount(latest, context);
    }
    return liveAccount(credential, read, context);
  }

  /** The patient's record, read with their token (null: the credential names no patient). */
  private async readRecord(credential: StoredCredential): Promise<PatientRecordRead | null> {
    const patientId = credential.patientId;
    if (!patientId) return null;
    const client = this.fhir.forCredential(credential.id);
    const patient = await readOutcome(() => client.read('Patient', patientId));
    const observations = patient.ok
      ? await readOutcome(() =>
          client.search('Observation', { patient: patientId, _sort: '-date', _count: 5 }),
        )
      : null;
    return { patient, observations };
  }
}
