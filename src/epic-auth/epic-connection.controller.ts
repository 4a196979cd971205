import { Controller, Get, Query, UseFilters } from '@nestjs/common';

import { OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';

import { AuthorizationService, RegistrationInfo } from './authorization.service';
import { EpicAuthApiFilter } from './filters/epic-auth-api.filter';

/**
 * JSON for the registration page: what to register at Epic. The status and disconnect routes
 * (`/fhir/epic-status`, `/fhir/epic-disconnect`) are ConnectionHealth's, which adds the connection state.
 */
@Controller('fhir')
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseFilters(EpicAuthApiFilter)
export class EpicConnectionController {
  constructor(private readonly authorization: AuthorizationService) {}

  @Get('epic-registration')
  @OrgScope({ query: 'org' })
  registration(@Query() { org }: OrgRefDto): Promise<RegistrationInfo> {
    return this.authorization.registrationInfo(org);
  }
}
