import { Controller, Get, Param, ParseUUIDPipe, Post, Render, Res } from '@nestjs/common';
import { Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { OwnCredential } from './own-credential.guard';
import { LaunchPagesBuilder } from './page-builders/launch-pages.builder';
import { PatientPage } from './view-models/patient-page';

/**
 * The patient's own pages: "My connected accounts" with the state of each connection, their summary
 * read with their own token, and Disconnect. Only their own credentials; anything else is a 404.
 */
@Controller('launch/patient')
@HtmlRoutes()
@Roles(Role.Patient)
export class PatientPagesController {
  constructor(private readonly pages: LaunchPagesBuilder) {}

  @Get()
  @Render('launch/patient')
  page(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<PatientPage> {
    return this.pages.patientPage({ user, csrfToken });
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
