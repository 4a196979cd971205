import { Controller, Get, Query } from '@nestjs/common';

import { OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';

import { RegistrationInfo } from './authorization.types';
import { ConnectionLifecycleService } from './connection-lifecycle.service';
import { JsonResponse, ManagementApi, SessionRead } from 'src/openapi/openapi.decorators';

/**
 * JSON for the registration page: what to register at Epic. The status and disconnect routes
 * (`/fhir/epic-status`, `/fhir/epic-disconnect`) are ConnectionHealth's, which adds the connection state.
 */
@Controller('fhir')
@ManagementApi('Connection')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class EpicConnectionController {
  constructor(private readonly lifecycle: ConnectionLifecycleService) {}

  @SessionRead()
  @JsonResponse(
    'RegistrationInfo',
    'What to register at Epic: redirect URI, launch URL, JWK Set URL, scopes.',
  )
  @Get('epic-registration')
  @OrgScope({ query: 'org' })
  registration(@Query() { org }: OrgRefDto): Promise<RegistrationInfo> {
    return this.lifecycle.registrationInfo(org);
  }
}
