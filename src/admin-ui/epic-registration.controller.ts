import {
  BadRequestException,
  Body,
  ForbiddenException,
  Controller,
  Get,
  NotFoundException,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { isUUID, validate } from 'class-validator';
import { Request, Response } from 'express';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { addFlash, saveSession } from 'src/common/flash';
import { ConnectionLifecycleService } from 'src/epic-auth/connection-lifecycle.service';
import { RegisterEpicClientDto } from 'src/organizations/dto/organization.dto';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminLayout } from './admin-page.interceptor';
import { RegistrationForm, registrationPage } from './view-models/registration-page';

/** The fields of the registration form, as posted (strings; the secret is never echoed back). */
type PostedForm = Partial<Record<keyof RegistrationForm | 'clientSecret', unknown>>;

/**
 * The registration page of an organization's Epic or other SMART server: the client
 * registration form (with the name the pages call the server), what to register at the server,
 * the connection status panel, Test Connection, Connect, Reconnect and Disconnect. Root admins
 * choose the organization with `?org=`; org admins land on their own.
 */
@Controller('admin/epic/registration')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class EpicRegistrationController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly authorization: ConnectionLifecycleService,
    private readonly clientKeys: ClientKeysService,
    private readonly layout: AdminLayout,
  ) {}

  @Get()
  async page(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query('org') org: string | undefined,
    @Query('saved') saved: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const orgId = await this.organizationOf(user, org, res);
    if (!orgId) return;
    res.render(
      'admin/epic-registration',
      await this.render(req, user, csrfToken, orgId, { saved: saved === '1' }),
    );
  }

  /** Saves the registration; invalid input re-renders the form with messages beside the fields. */
  @Post()
  async save(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query('org') org: string | undefined,
    @Body() body: PostedForm,
    @Res() res: Response,
  ): Promise<void> {
    const orgId = await this.organizationOf(user, org, res);
    if (!orgId) return;
    const dto = plainToInstance(RegisterEpicClientDto, {
      clientId: str(body.clientId),
      clientSecret: str(body.clientSecret) || undefined, // blank keeps the saved secret
      environment: str(body.environment),
      fhirBaseUrl: str(body.fhirBaseUrl) || undefined,
      // The form always sends it (blank clears the name); a post without the field keeps it.
      fhirServerName: typeof body.fhirServerName === 'string' ? str(body.fhirServerName) : undefined,
      scopes: str(body.scopes),
      tokenAuthMethod: str(body.tokenAuthMethod) || undefined,
      basicEncoding: str(body.basicEncoding) || undefined,
      scopeSyntax: str(body.scopeSyntax) || undefined,
      assertionAlg: str(body.assertionAlg) || undefined,
      connectionMode: str(body.connectionMode) || undefined,
    });
    const errors: Record<string, string> = {};
    for (const error of await validate(dto, { whitelist: true })) {
      errors[error.property] = Object.values(error.constraints ?? {})[0] ?? 'is not valid';
    }
    if (Object.keys(errors).length === 0) {
      try {
        const saved = await this.organizations.registerEpicClient(user, orgId, dto);
        if (saved.secretCleared) {
          addFlash(req.session, { level: 'warning', text: SECRET_CLEARED });
          await saveSession(req.session);
        }
        res.redirect(303, `/admin/epic/registration?org=${orgId}&saved=1`);
        return;
      } catch (error) {
        if (!(error instanceof BadRequestException || error instanceof ForbiddenException)) throw error;
        const fields = (error.getResponse() as { fields?: Record<string, string> }).fields;
        // The service names the fields of its client-authentication checks; its other checks concern
        // the FHIR base URL (scheme, host, production rules).
        if (fields) Object.assign(errors, fields);
        else errors.fhirBaseUrl = messagesOf(error).join(' ');
      }
    }
    const submitted: RegistrationForm = {
      clientId: str(body.clientId),
      environment: str(body.environment),
      fhirBaseUrl: str(body.fhirBaseUrl),
      fhirServerName: str(body.fhirServerName),
      scopes: str(body.scopes),
      tokenAuthMethod: str(body.tokenAuthMethod),
      basicEncoding: str(body.basicEncoding),
      scopeSyntax: str(body.scopeSyntax),
      assertionAlg: str(body.assertionAlg),
      connectionMode: str(body.connectionMode),
    };
    res
      .status(400)
      .render(
        'admin/epic-registration',
        await this.render(req, user, csrfToken, orgId, { submitted, errors }),
      );
  }

  /**
   * `?org` for root admins (without it: back to the console), the own organization for org admins
   * (added when missing). Another organization, or an unknown or malformed id: the 404 page.
   */
  private async organizationOf(
    user: AuthUser,
    org: string | undefined,
    res: Response,
  ): Promise<string | null> {
    if (org) {
      const own = user.role === Role.RootAdmin || org === user.organizationId;
      if (!own || !isUUID(org)) throw new NotFoundException('Organization not found');
      await this.organizations.get(org);
      return org;
    }
    if (user.role === Role.OrgAdmin && user.organizationId) {
      res.redirect(303, `/admin/epic/registration?org=${user.organizationId}`);
      return null;
    }
    res.redirect(303, '/admin');
    return null;
  }

  private async render(
    req: Request,
    user: AuthUser,
    csrfToken: string,
    orgId: string,
    options: { saved?: boolean; submitted?: RegistrationForm; errors?: Record<string, string> },
  ): Promise<object> {
    const [org, info] = await Promise.all([
      this.organizations.get(orgId),
      this.authorization.registrationInfo(orgId),
    ]);
    const jwksUrls = {
      sandbox: this.clientKeys.jwksUrl('sandbox'),
      production: this.clientKeys.jwksUrl('production'),
    };
    return this.layout.decorate(req, {
      ...registrationPage(org, info, { ...options, jwksUrls }),
      user,
      csrfToken,
    });
  }
}

const str = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');

function messagesOf(error: BadRequestException | ForbiddenException): string[] {
  const body = error.getResponse() as { message?: string | string[] };
  return Array.isArray(body.message) ? body.message : [body.message ?? error.message];
}

const SECRET_CLEARED =
  'The saved client secret was deleted, because the client ID, the environment or the FHIR base URL changed: a secret is sent only to the server it was entered for. Enter the client secret again.';
