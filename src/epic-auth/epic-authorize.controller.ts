import { Controller, Get, Inject, Param, Post, Query, Render, Req, Res } from '@nestjs/common';
import { IsUUID } from 'class-validator';
import { Request, Response } from 'express';

import {
  CsrfToken,
  CurrentUser,
  HtmlRoutes,
  OrgScope,
  Public,
  Roles,
} from 'src/common/decorators/auth.decorators';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { addFlash, saveSession } from 'src/common/flash';

import { AuthorizationCallbackService } from './authorization-callback.service';
import { bindBrowser, hashBinding, presentedBinding } from './browser-binding';
import { BackendConnectionService } from './backend-connection.service';
import { OrganizationConnectionService } from './organization-connection.service';
import { PatientLaunchService } from './patient-launch.service';
import { ProviderLaunchService } from './provider-launch.service';

class OrgQuery {
  @IsUUID('all', { message: 'org must be an organization id' })
  org!: string;
}

/** What `epic/reauthenticate` renders. */
interface ReauthenticatePage {
  title: string;
  user: AuthUser;
  csrfToken: string;
  orgId: string;
  hasTokens: boolean;
  backend: boolean;
  server: { name: string; isEpic: boolean };
}

/** Browser entry points: the organization connection, its callback, and the EHR and patient launches. */
@Controller()
@HtmlRoutes()
export class EpicAuthorizeController {
  constructor(
    private readonly organizationConnection: OrganizationConnectionService,
    private readonly providerLaunch: ProviderLaunchService,
    private readonly patientLaunch: PatientLaunchService,
    private readonly callbacks: AuthorizationCallbackService,
    private readonly backend: BackendConnectionService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Sets the browser-binding cookie and returns the hash the pending authorization keeps. */
  private bind(req: Request, res: Response): string {
    return hashBinding(bindBrowser(req, res, this.config.secureCookies));
  }

  /** Sends an admin to Epic to authorize the organization's connection. */
  @Get('fhir/epic-authorize')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope({ query: 'org' })
  async authorize(
    @CurrentUser() user: AuthUser,
    @Query() { org }: OrgQuery,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const target = await this.organizationConnection.authorizeRedirect(user, req.session.id, org, () =>
      this.bind(req, res),
    );
    res.redirect(303, target);
  }

  /**
   * Re-authenticate (the manual retry, /connect_epic/<org_id>): a confirmation page,
   * because clearing tokens on a plain GET would let any cross-site link disconnect an organization.
   */
  @Get('connect_epic/:orgId')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  @Render('epic/reauthenticate')
  async reauthenticatePage(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @CsrfToken() csrfToken: string,
  ): Promise<ReauthenticatePage> {
    const { hasTokens, backend, server } = await this.organizationConnection.reauthenticationPage(orgId);
    const title = backend
      ? `Connect to ${server.name} as a backend service`
      : `Re-authenticate with ${server.name}`;
    return { title, user, csrfToken, orgId, hasTokens, backend, server };
  }

  /** Clears the stored tokens (audited), then starts the authorization from scratch. */
  @Post('connect_epic/:orgId')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  async reauthenticate(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const started = await this.organizationConnection.reauthenticate(user, req.session.id, orgId, () =>
      this.bind(req, res),
    );
    if (!started) {
      // A backend service: connected at once, with the result on the next page.
      await this.connectBackend(user, orgId, req);
      await saveSession(req.session); // the next page shows the result: saved before it is asked for
      res.redirect(303, `/admin/epic/registration?org=${orgId}`);
      return;
    }
    // Not a redirect: the CSP's form-action 'self' also governs where a form's redirects may go, so
    // browsers would refuse a 303 to Epic. A page that moves on by itself (meta refresh) is allowed.
    const { authorizeUrl, server } = started;
    res.status(200).render('epic/redirecting', {
      title: `Opening ${server.name}`,
      user,
      authorizeUrl: authorizeUrl.toString(),
      orgId,
      server,
    });
  }

  /** Obtains a backend-service token now and says how it went on the next page (flash). */
  private async connectBackend(user: AuthUser, orgId: string, req: Request): Promise<void> {
    const outcome = await this.backend.tryConnect(user, orgId);
    addFlash(
      req.session,
      outcome.ok
        ? {
            level: 'success',
            text: `Connected to ${outcome.serverName} as a backend service. The token is valid until ${outcome.expiresAt.toISOString().replace('T', ' ').slice(0, 16)} UTC and is renewed automatically; scopes granted: ${outcome.scopes.join(' ') || 'none listed'}.`,
          }
        : { level: 'error', text: `Not connected: ${outcome.message}` },
    );
  }

  /**
   * Epic redirects the browser here with `code` and `state` (or `error`). Public, because the
   * check is the pending authorization bound to this session, not the route's guards; every
   * failure is a page, never JSON.
   */
  @Public()
  @Get('fhir/epic-callback')
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const done = await this.callbacks.complete(
      req.session.id,
      req.query,
      hashBinding(presentedBinding(req, this.config.secureCookies)),
    );
    if (done.kind === 'organization') {
      res.redirect(303, `/admin/organizations/${done.organizationId}?connected=1`);
      return;
    }
    // A launched user is signed in as themselves; passport 0.7 regenerates the session (new id: no fixation).
    if (req.user?.id !== done.user.id) {
      await new Promise<void>((resolve, reject) =>
        req.login(done.user, (err) => (err ? reject(err as Error) : resolve())),
      );
    }
    res.redirect(303, done.kind === 'provider' ? `/launch/provider/${done.credentialId}` : '/launch/patient');
  }

  /**
   * The EHR launch URL (docs/epic-and-smart.md §7): Epic opens it with `iss` and `launch` (GET, or a form
   * POST from some EHRs). Reachable without signing in; an unknown or missing `iss`, or no `launch`,
   * is a 400 page and no redirect anywhere. `?org=<slug>` picks the organization when several share
   * one FHIR server.
   */
  @Public()
  @Get('fhir/epic-launch')
  async launch(
    @Query() query: Record<string, unknown>,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const url = await this.providerLaunch.start(query.iss, query.launch, query.org, this.bind(req, res));
    res.redirect(303, url.toString());
  }

  /**
   * "Connect my Epic account" (standalone patient launch): `?org=<slug>`. Public: a signed-in patient
   * of that organization links the account, anyone else signs in as the patient Epic names.
   */
  @Public()
  @Get('fhir/epic-connect')
  async connect(@Query('org') org: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const url = await this.patientLaunch.start(org, req.user ?? null, req.session.id, this.bind(req, res));
    res.redirect(303, url.toString());
  }

  @Public()
  @Post('fhir/epic-launch')
  async launchPost(
    @Query() query: Record<string, unknown>,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const url = await this.providerLaunch.start(
      body.iss ?? query.iss,
      body.launch ?? query.launch,
      body.org ?? query.org,
      this.bind(req, res),
    );
    res.redirect(303, url.toString());
  }
}
