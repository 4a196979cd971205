import { Body, Controller, Get, HttpCode, Post, Query, UseFilters } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AuthorizationService, ConnectionStatus, RegistrationInfo } from './authorization.service';
import { EpicAuthApiFilter } from './filters/epic-auth-api.filter';

/** JSON for the registration page (seed 001: /fhir/epic-status, /fhir/epic-disconnect). */
@Controller('fhir')
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseFilters(EpicAuthApiFilter)
export class EpicConnectionController {
  constructor(private readonly authorization: AuthorizationService) {}

  @Get('epic-status')
  @OrgScope({ query: 'org' })
  status(@Query() { org }: OrgRefDto): Promise<ConnectionStatus> {
    return this.authorization.status(org);
  }

  @Get('epic-registration')
  @OrgScope({ query: 'org' })
  registration(@Query() { org }: OrgRefDto): Promise<RegistrationInfo> {
    return this.authorization.registrationInfo(org);
  }

  /** CSRF-protected like every session POST (`x-csrf-token` or `_csrf`). */
  @Post('epic-disconnect')
  @HttpCode(200)
  @OrgScope({ body: 'org' })
  async disconnect(@CurrentUser() user: AuthUser, @Body() { org }: OrgRefDto): Promise<ConnectionStatus> {
    await this.authorization.disconnect(user, org, 'disconnect');
    return this.authorization.status(org);
  }
}
