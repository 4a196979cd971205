import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { AuthorizationService, ConnectionStatus } from 'src/epic-auth/authorization.service';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ConnectionState } from './connection-state';
import { ConnectionStatesService } from './connection-states.service';

/** `/fhir/epic-status`: the stored facts plus the state every page and notice uses. */
export interface ConnectionStatusView extends ConnectionStatus {
  state: ConnectionState;
  /** When the connection stops working without a new sign-in; null if it refreshes indefinitely. */
  endsAt: string | null;
}

/** Seed 001's status JSON and disconnect, answered with the connection state. */
@Controller('fhir')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class ConnectionStatusController {
  constructor(
    private readonly authorization: AuthorizationService,
    private readonly states: ConnectionStatesService,
  ) {}

  @Get('epic-status')
  @OrgScope({ query: 'org' })
  status(@Query() { org }: OrgRefDto): Promise<ConnectionStatusView> {
    return this.view(org);
  }

  /** CSRF-protected like every session POST (`x-csrf-token` or `_csrf`). */
  @Post('epic-disconnect')
  @HttpCode(200)
  @OrgScope({ body: 'org' })
  async disconnect(@CurrentUser() user: AuthUser, @Body() { org }: OrgRefDto): Promise<ConnectionStatusView> {
    await this.authorization.disconnect(user, org, 'disconnect');
    return this.view(org);
  }

  private async view(organizationId: string): Promise<ConnectionStatusView> {
    const now = new Date();
    const [status, snapshot] = await Promise.all([
      this.authorization.status(organizationId, now),
      this.states.snapshot(organizationId, now),
    ]);
    return {
      ...status,
      state: snapshot!.state,
      endsAt: snapshot!.endsAt?.toISOString() ?? null,
    };
  }
}
