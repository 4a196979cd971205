import { Controller, Get, Inject, Param, ParseUUIDPipe, Post, Render, Res } from '@nestjs/common';
import { Response } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { deriveConnectionState } from 'src/connections/connections.read-model';
import { TokenStoreService } from 'src/connections/token-store.service';

import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { EPIC_LABEL, serverLabel, speakOfServer } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { OwnCredential } from './own-credential.guard';
import { stateBadge } from './view-models/connection-row';
import { displayName } from './view-models/launch-page';

type EpicCredentialRecord = NonNullable<Awaited<ReturnType<TokenStoreService['findUserCredential']>>>;

/**
 * The patient's own pages: "My connected accounts" with the state of each connection, their summary
 * read with their own token, and Disconnect. Only their own credentials; anything else is a 404.
 */
@Controller('launch/patient')
@HtmlRoutes()
@Roles(Role.Patient)
export class PatientPagesController {
  constructor(
    private readonly tokens: TokenStoreService,
    private readonly fhir: FhirClientService,
    private readonly audit: AuditService,
    private readonly organizations: OrganizationsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @Render('launch/patient')
  async page(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<object> {
    const now = new Date();
    const warningMs = this.config.env.EXPIRY_WARNING_MINUTES * 60_000;
    const accounts = [];
    // The patient's organization: its server's name ("Epic", the administrator's name, "the EHR").
    const org = user.organizationId ? await this.organizations.get(user.organizationId) : null;
    const server = org ? serverLabel(org) : EPIC_LABEL;
    // Stored reasons and errors are worded for Epic; another server is called by its name.
    const said = (message: string | null) => (message === null ? null : speakOfServer(message, server));
    // Where to connect again: this organization's patient launch.
    const reconnect = (): string | null =>
      org ? `/fhir/epic-connect?org=${encodeURIComponent(org.slug)}` : null;
    // Ended by the server (tokens cleared, reason kept): expired, with the reason and a way back.
    const endedAccount = (credential: EpicCredentialRecord) => {
      const state = deriveConnectionState(
        {
          configured: true,
          credential: null,
          lastError: credential.lastError,
          tokenExpiry: credential.expiresAt,
        },
        now,
        warningMs,
      );
      return {
        id: credential.id,
        badge: stateBadge(state),
        state,
        summary: { observations: [] },
        ended: {
          at: credential.endedAt!.toISOString(),
          reason: said(credential.lastError),
          reconnect: reconnect(),
        },
        since: credential.createdAt.toISOString(),
      };
    };
    for (const credential of await this.tokens.listUserCredentials(user.id)) {
      if (credential.endedAt) {
        accounts.push(endedAccount(credential));
        continue;
      }
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
        now,
        warningMs,
      );
      const summary: { name?: string; birthDate?: string; observations: string[]; error?: string } = {
        observations: [],
      };
      try {
        const client = this.fhir.forCredential(credential.id);
        if (credential.patientId) {
          const patient = await client.read('Patient', credential.patientId);
          summary.name = displayName(patient.name);
          summary.birthDate = patient.birthDate;
          const bundle = await client.search('Observation', {
            patient: credential.patientId,
            _sort: '-date',
            _count: 5,
          });
          const newestFirst = (bundle.entry ?? []).sort((a, b) =>
            (b.resource?.effectiveDateTime ?? '').localeCompare(a.resource?.effectiveDateTime ?? ''),
          );
          summary.observations = newestFirst.map((e) => {
            const o = e.resource!;
            const value = o.valueQuantity
              ? `${o.valueQuantity.value} ${o.valueQuantity.unit ?? ''}`.trim()
              : (o.valueString ?? '');
            return `${o.code.text ?? o.code.coding?.[0]?.display ?? 'Observation'}${value ? `: ${value}` : ''}${o.effectiveDateTime ? ` (${o.effectiveDateTime.slice(0, 10)})` : ''}`;
          });
        }
      } catch (error) {
        if (!(error instanceof FhirClientError)) throw error;
        if (error.kind === FhirErrorKind.ReauthenticationRequired) {
          // Epic refused the grant during this very visit: show it as ended at once.
          const latest = await this.tokens.findUserCredential(user.id, credential.id);
          if (latest?.endedAt) {
            accounts.push(endedAccount(latest));
            continue;
          }
        }
        summary.error = said(error.message)!;
      }
      accounts.push({
        id: credential.id,
        badge: stateBadge(state),
        state,
        summary,
        lastError: said(credential.lastError),
        since: credential.createdAt.toISOString(),
      });
    }
    return { title: 'My connected accounts', user, csrfToken, accounts, server };
  }

  @Post('credentials/:credentialId/disconnect')
  @OwnCredential()
  async disconnect(
    @CurrentUser() user: AuthUser,
    @Param('credentialId', new ParseUUIDPipe()) credentialId: string,
    @Res() res: Response,
  ): Promise<void> {
    await this.tokens.deleteUserCredential(user.id, credentialId); // @OwnCredential checked it is theirs
    await this.audit.record({
      actor: user,
      action: 'epic.patient-disconnect',
      detail: { credential: credentialId },
    });
    res.redirect(303, '/launch/patient');
  }
}
