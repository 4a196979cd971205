import { Inject, Injectable } from '@nestjs/common';
import { validate } from 'class-validator';
import { Request } from 'express';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import type { CreatedApiKey } from 'src/api-keys/api-keys.types';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DomainError, FieldErrors } from 'src/common/errors/domain-error';
import { fieldErrorsOf } from 'src/common/errors/field-errors';
import { addFlash, saveSession } from 'src/common/flash';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { AuthUser } from 'src/users/user.view';

import { AdminLayout, AdminLayoutData } from '../admin-page.interceptor';
import {
  ApiKeyForm,
  ApiKeysPage,
  apiKeysPage,
  createApiKeyDto,
  editedFlash,
  PostedApiKeyForm,
  revokedFlash,
  submittedApiKeyForm,
  updateApiKeyDto,
} from '../view-models/api-keys-page';
import { gatewayBaseUrl } from '../view-models/gateway';
import type { Viewer } from '../view-models/page';
import { firstMessages, formErrors } from '../view-models/registration-page';

/** The keys page as rendered: the page, who sees it, and the admin layout's data. */
export type ApiKeysPageView = ApiKeysPage & Viewer & AdminLayoutData;

/** What the create form leads to: the page with the new key shown once (201), or the form again with its messages (400). */
export interface ApiKeyCreateOutcome {
  status: 201 | 400;
  page: ApiKeysPageView;
}

/** What an Edit leads to: back to the list with a message (303), or the page with the form's messages (400). */
export type ApiKeyEditOutcome = { status: 303 } | { status: 400; page: ApiKeysPageView };

/**
 * An organization's API keys page, its create form, its Edit forms and its revoke buttons. The organization is
 * one the viewer may act on (@OrgScope checked it); an unknown one is a 404.
 */
@Injectable()
export class ApiKeysPageBuilder {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly keys: ApiKeysService,
    private readonly layout: AdminLayout,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  page(req: Request, viewer: Viewer, orgId: string): Promise<ApiKeysPageView> {
    return this.render(req, viewer, orgId, {});
  }

  /**
   * Creates the key (ApiKeysService.create) and renders the page with the whole key, this once:
   * it is in no session, flash or redirect, only in this answer (sent with `Cache-Control: no-store`).
   * Field errors, the form's or the service's, come back beside their fields with what was typed.
   */
  async create(
    req: Request,
    viewer: Viewer,
    orgId: string,
    body: PostedApiKeyForm,
  ): Promise<ApiKeyCreateOutcome> {
    const dto = createApiKeyDto(body);
    // The form checks its DTO itself rather than through the global ValidationPipe, which would
    // answer with the error page: here each field's first message goes beside it.
    const fields: FieldErrors = firstMessages(fieldErrorsOf(await validate(dto, { whitelist: true })));
    if (Object.keys(fields).length === 0) {
      try {
        const created = await this.keys.create(viewer.user, orgId, dto);
        return { status: 201, page: await this.render(req, viewer, orgId, { created }) };
      } catch (error) {
        if (!(error instanceof DomainError && error.fields)) throw error;
        Object.assign(fields, error.fields);
      }
    }
    const page = await this.render(req, viewer, orgId, {
      form: submittedApiKeyForm(body),
      errors: formErrors(fields),
    });
    return { status: 400, page };
  }

  /**
   * Changes an active key through ApiKeysService.update (the JSON API's PATCH: same validation,
   * same audit event `api-key.updated`) and tells the next page what changed. Field errors, the
   * form's or the service's, come back beside the key's fields with what was typed and nothing
   * changed. A revoked or expired key is refused by the service (409, its message on the error page):
   * the page offers no Edit for it.
   */
  async edit(
    req: Request,
    viewer: Viewer,
    orgId: string,
    keyId: string,
    body: PostedApiKeyForm,
  ): Promise<ApiKeyEditOutcome> {
    const before = await this.keys.get(orgId, keyId); // another organization's key is a 404
    const dto = updateApiKeyDto(body, before);
    const fields: FieldErrors = firstMessages(fieldErrorsOf(await validate(dto, { whitelist: true })));
    if (Object.keys(fields).length === 0) {
      try {
        const after = await this.keys.update(viewer.user, orgId, keyId, dto);
        addFlash(req.session, editedFlash(before, after));
        await saveSession(req.session); // before the redirect, which the browser follows at once
        return { status: 303 };
      } catch (error) {
        if (!(error instanceof DomainError && error.fields)) throw error;
        Object.assign(fields, error.fields);
      }
    }
    const page = await this.render(req, viewer, orgId, {
      edit: { keyId, form: submittedApiKeyForm(body), errors: formErrors(firstMessages(fields)) },
    });
    return { status: 400, page };
  }

  /** Revokes the key and tells the next page so. */
  async revoke(req: Request, user: AuthUser, orgId: string, keyId: string): Promise<void> {
    const startedAt = Date.now();
    const key = await this.keys.revoke(user, orgId, keyId);
    const alreadyRevoked = key.revokedAt !== null && new Date(key.revokedAt).getTime() < startedAt;
    addFlash(req.session, revokedFlash(key, alreadyRevoked));
    await saveSession(req.session); // before the redirect, which the browser follows at once
  }

  private async render(
    req: Request,
    viewer: Viewer,
    orgId: string,
    options: {
      form?: ApiKeyForm;
      errors?: Record<string, string>;
      created?: CreatedApiKey;
      edit?: { keyId: string; form: ApiKeyForm; errors: Record<string, string> };
    },
  ): Promise<ApiKeysPageView> {
    const org = await this.organizations.get(orgId); // first: an unknown organization is a 404
    const keys = await this.keys.list(orgId);
    const gatewayBase = gatewayBaseUrl(this.config.publicBaseUrl, org.slug);
    return this.layout.decorate(req, {
      ...apiKeysPage(org, keys, { ...options, now: new Date(), gatewayBaseUrl: gatewayBase }),
      ...viewer,
    });
  }
}
