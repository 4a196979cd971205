import { Body, Controller, HttpCode, Post } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ConnectionTestResult, ConnectionTestService } from './connection-test.service';
import { JsonResponse, ManagementApi, SessionWrite } from 'src/openapi/openapi.decorators';

/** The registration page's Test Connection: CSRF-protected like every session POST. */
@Controller('fhir')
@ManagementApi('Connection')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class ConnectionTestController {
  constructor(private readonly connectionTest: ConnectionTestService) {}

  @SessionWrite()
  @JsonResponse('ConnectionTestResult', 'Both layers, step by step; a failed test is still a 200.')
  @Post('test-epic-connection')
  @HttpCode(200)
  @OrgScope({ body: 'org' })
  test(@CurrentUser() user: AuthUser, @Body() { org }: OrgRefDto): Promise<ConnectionTestResult> {
    return this.connectionTest.run(user, org);
  }
}
