import { Controller, Get, Render } from '@nestjs/common';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { serverLabel, speakOfServer } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { CheckedCredential, OwnCredential, OwnedCredentialRecord } from './own-credential.guard';
import { providerLaunchPage } from './view-models/launch-page';

/**
 * Pages after a launch. A provider sees the context of their own launch only: another user's
 * credential, or an unknown one, is a 404. Data is read with the provider's own token, server-side.
 */
@Controller('launch')
@HtmlRoutes()
export class LaunchPagesController {
  constructor(
    private readonly fhir: FhirClientService,
    private readonly organizations: OrganizationsService,
  ) {}

  @Get('provider/:credentialId')
  @Roles(Role.Provider)
  @OwnCredential()
  @Render('launch/provider')
  async provider(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @CheckedCredential() credential: OwnedCredentialRecord,
  ): Promise<object> {
    const client = this.fhir.forCredential(credential.id);
    // The server that launched the app: "Epic", the name its administrator gave it, or "the EHR".
    const server = serverLabel(await this.organizations.get(credential.organizationId));
    const read = async <T>(work: () => Promise<T>): Promise<{ value?: T; error?: string }> => {
      try {
        return { value: await work() };
      } catch (error) {
        if (error instanceof FhirClientError) {
          return {
            error:
              error.kind === FhirErrorKind.ReauthenticationRequired ||
              error.kind === FhirErrorKind.NotConnected
                ? `This launch has ended. Open the app from ${server.name} again.`
                : speakOfServer(error.message, server),
          };
        }
        throw error;
      }
    };
    const patient = credential.patientId
      ? await read(() => client.read('Patient', credential.patientId!))
      : {};
    const encounter = credential.encounterId
      ? await read(() => client.read('Encounter', credential.encounterId!))
      : {};
    return {
      ...providerLaunchPage({
        fhirUser: credential.fhirUser,
        patient: patient.value ?? null,
        encounter: encounter.value ?? null,
        needPatientBanner: credential.needPatientBanner,
        errors: [patient.error, encounter.error].filter((e): e is string => !!e),
        hasPatientContext: credential.patientId !== null,
      }),
      server,
      user,
      csrfToken,
    };
  }
}
