import { Body, Controller, Get, Param, ParseUUIDPipe, Post, Query, Render, Res } from '@nestjs/common';
import { Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { OwnCredential } from './own-credential.guard';
import { LaunchPagesBuilder } from './page-builders/launch-pages.builder';
import { PatientPage } from './view-models/patient-page';

/** The email form's fields as posted (checked by the service; kept for the page on an error). */
export interface OwnConnectionFormBody {
  contactEmail?: unknown;
  ownConnection?: unknown;
}

/** What a form post's field shows back in the field after an error. */
export const asText = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The patient's own pages: "My connected accounts" with the state of each connection, their summary
 * read with their own token, and Disconnect; connections that ended (until they connect again) and
 * the email form (their address and whether they want "your connection ended" emails). Only their
 * own credentials; anything else is a 404.
 */
@Controller('launch/patient')
@HtmlRoutes()
@Roles(Role.Patient)
export class PatientPagesController {
  constructor(private readonly pages: LaunchPagesBuilder) {}

  @Get()
  @Render('launch/patient')
  page(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query('saved') saved?: string,
  ): Promise<PatientPage> {
    return this.pages.patientPage({ user, csrfToken }, { saved: saved === '1' });
  }

  /** The email form (CSRF-protected like every form): saved, or the page again (400) with the error and what was entered. */
  @Post('notifications')
  async notifications(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Body() body: OwnConnectionFormBody,
    @Res() res: Response,
  ): Promise<void> {
    const outcome = await this.pages.saveOwnContact(user, body ?? {});
    if (outcome.ok) return res.redirect(303, '/launch/patient?saved=1');
    const page = await this.pages.patientPage(
      { user, csrfToken },
      {
        contactEmail: asText(body?.contactEmail),
        ownConnection: asText(body?.ownConnection),
        error: outcome.error,
        field: outcome.field,
      },
    );
    res.status(400).render('launch/patient', page);
  }

  @Post('credentials/:credentialId/disconnect')
  @OwnCredential()
  async disconnect(
    @CurrentUser() user: AuthUser,
    @Param('credentialId', new ParseUUIDPipe()) credentialId: string,
    @Res() res: Response,
  ): Promise<void> {
    await this.pages.disconnectPatientAccount(user, credentialId);
    res.redirect(303, '/launch/patient');
  }
}
