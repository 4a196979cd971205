import { Controller, Get, Query } from '@nestjs/common';

import { Roles } from 'src/common/decorators/auth.decorators';
import { JsonResponse, ManagementApi, SessionRead } from 'src/openapi/openapi.decorators';
import { Role } from 'src/users/user.types';

import { AuditQuery } from './audit-query.dto';
import { AuditEventView, AuditService } from './audit.service';

/** Every organization's audit trail, for root admins. Org admins read theirs under /api/organizations. */
@Controller('api/audit-events')
@ManagementApi('Audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @SessionRead()
  @JsonResponse(['AuditEvent'], 'Audit events of every organization, newest first')
  @Get()
  @Roles(Role.RootAdmin)
  list(@Query() query: AuditQuery): Promise<AuditEventView[]> {
    return this.audit.list({ limit: query.limit });
  }
}
