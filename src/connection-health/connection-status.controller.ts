import { Body, Controller, Get, HttpCode, NotFoundException, Post, Query } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { ConnectionLifecycleService } from 'src/epic-auth/connection-lifecycle.service';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { connectionStatusView, ConnectionStatusView } from './connection-status';
import { JsonResponse, ManagementApi, SessionRead, SessionWrite } from 'src/openapi/openapi.decorators';

export type { ConnectionStatusView } from './connection-status';

/**
 * The registration page's status JSON and disconnect, answered with the connection state. Every field
 * comes from one snapshot of the connection (one read, one state): connection-status.ts.
 */
@Controller('fhir')
@ManagementApi('Connection')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class ConnectionStatusController {
  constructor(
    private readonly authorization: ConnectionLifecycleService,
    private readonly states: ConnectionsReadModel,
  ) {}

  @SessionRead()
  @JsonResponse('ConnectionStatus', "The organization's connection")
  @Get('epic-status')
  @OrgScope({ query: 'org' })
  status(@Query() { org }: OrgRefDto): Promise<ConnectionStatusView> {
    return this.view(org);
  }

  /** CSRF-protected like every session POST (`x-csrf-token` or `_csrf`). */
  @SessionWrite()
  @JsonResponse('ConnectionStatus', 'Disconnected: the connection as it is now')
  @Post('epic-disconnect')
  @HttpCode(200)
  @OrgScope({ body: 'org' })
  async disconnect(@CurrentUser() user: AuthUser, @Body() { org }: OrgRefDto): Promise<ConnectionStatusView> {
    await this.authorization.disconnect(user, org, 'disconnect');
    return this.view(org);
  }

  private async view(organizationId: string): Promise<ConnectionStatusView> {
    const snapshot = await this.states.snapshot(organizationId, new Date());
    if (!snapshot) throw new NotFoundException('Organization not found');
    return connectionStatusView(snapshot, this.authorization.redirectUri);
  }
}
