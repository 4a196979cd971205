import { Inject, Injectable } from '@nestjs/common';
import { validate } from 'class-validator';
import { Request } from 'express';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DomainError, FieldErrors } from 'src/common/errors/domain-error';
import { fieldErrorsOf } from 'src/common/errors/field-errors';
import { addFlash, saveSession } from 'src/common/flash';
import { ConnectionLifecycleService } from 'src/epic-auth/connection-lifecycle.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { AdminLayout, AdminLayoutData } from '../admin-page.interceptor';
import type { Viewer } from '../view-models/page';
import {
  firstMessages,
  formErrors,
  PostedRegistrationForm,
  RegistrationForm,
  RegistrationPage,
  registrationDto,
  registrationPage,
  submittedForm,
} from '../view-models/registration-page';

/** The registration page as rendered: the page, who sees it, and the admin layout's data. */
export type RegistrationPageView = RegistrationPage & Viewer & AdminLayoutData;

/** What saving the form leads to: the saved page, or the form again with its messages (400). */
export type RegistrationSaveOutcome =
  { saved: true; redirect: string } | { saved: false; page: RegistrationPageView };

const SECRET_CLEARED =
  'The saved client secret was deleted, because the client ID, the environment or the FHIR base URL changed: a secret is sent only to the server it was entered for. Enter the client secret again.';

/**
 * The registration page of an organization's Epic or other SMART server, and its form. The
 * organization is one the viewer may act on (@OrgScope checked it); an unknown one is a 404.
 */
@Injectable()
export class RegistrationPageBuilder {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly lifecycle: ConnectionLifecycleService,
    private readonly clientKeys: ClientKeysService,
    private readonly layout: AdminLayout,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  page(
    req: Request,
    viewer: Viewer,
    orgId: string,
    options: { saved: boolean },
  ): Promise<RegistrationPageView> {
    return this.render(req, viewer, orgId, options);
  }

  /**
   * Saves the registration (OrganizationsService.registerEpicClient). Field errors, whether the
   * form's DTO or the service found them, come back beside their fields with what was typed;
   * any other error escapes to the error page.
   */
  async save(
    req: Request,
    viewer: Viewer,
    orgId: string,
    body: PostedRegistrationForm,
  ): Promise<RegistrationSaveOutcome> {
    const dto = registrationDto(body);
    // The form checks its DTO itself, not through the global ValidationPipe, which would answer
    // with the error page: here each field's first message goes beside it.
    const fields: FieldErrors = firstMessages(fieldErrorsOf(await validate(dto, { whitelist: true })));
    if (Object.keys(fields).length === 0) {
      try {
        const saved = await this.organizations.registerEpicClient(viewer.user, orgId, dto);
        if (saved.secretCleared) {
          addFlash(req.session, { level: 'warning', text: SECRET_CLEARED });
          await saveSession(req.session); // before the redirect, which the browser follows at once
        }
        return { saved: true, redirect: `/admin/epic/registration?org=${orgId}&saved=1` };
      } catch (error) {
        if (!(error instanceof DomainError && error.fields)) throw error;
        Object.assign(fields, error.fields);
      }
    }
    const page = await this.render(req, viewer, orgId, {
      submitted: submittedForm(body),
      errors: formErrors(fields),
    });
    return { saved: false, page };
  }

  private async render(
    req: Request,
    viewer: Viewer,
    orgId: string,
    options: { saved?: boolean; submitted?: RegistrationForm; errors?: Record<string, string> },
  ): Promise<RegistrationPageView> {
    const org = await this.organizations.get(orgId); // first: an unknown organization is a 404
    const info = await this.lifecycle.registrationInfo(orgId);
    const jwksUrls = {
      sandbox: this.clientKeys.jwksUrl('sandbox'),
      production: this.clientKeys.jwksUrl('production'),
    };
    return this.layout.decorate(req, {
      ...registrationPage(org, info, { ...options, jwksUrls, publicBaseUrl: this.config.publicBaseUrl }),
      ...viewer,
    });
  }
}
