import { Injectable } from '@nestjs/common';

import { AuditService } from 'src/audit/audit.service';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { GatewayTrafficService } from 'src/gateway/traffic/gateway-traffic.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { ConsoleQueryDto } from '../dto/console-query.dto';
import { ConsolePage, consoleListQuery, consolePage } from '../view-models/console-page';
import { OrganizationPage, organizationPage } from '../view-models/organization-page';
import type { Viewer } from '../view-models/page';

/** The root admin console and each organization's page: reads what they show, then maps it. */
@Injectable()
export class OrganizationPagesBuilder {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly states: ConnectionsReadModel,
    private readonly notifications: NotificationsService,
    private readonly traffic: GatewayTrafficService,
  ) {}

  async console(viewer: Viewer, query: ConsoleQueryDto): Promise<ConsolePage> {
    const now = new Date();
    // The counts give the page's total too (without a search): one full pass, not two.
    const counts = await this.states.counts(now);
    const list = await this.states.list(consoleListQuery(query), now, counts);
    return consolePage(viewer, query, counts, list);
  }

  /** An unknown organization is a 404 (OrganizationsService.get). */
  async organization(
    viewer: Viewer,
    orgId: string,
    options: { connected: boolean },
  ): Promise<OrganizationPage> {
    const org = await this.organizations.get(orgId);
    const [admins, events, snapshot, notifications, traffic, access] = await Promise.all([
      this.organizations.listAdmins(orgId),
      this.audit.list({ organizationId: orgId, limit: 20 }),
      this.states.snapshot(orgId),
      this.notifications.list(viewer.user, { organizationId: orgId, limit: 5 }),
      this.traffic.lastDay(orgId),
      this.traffic.page(orgId, { limit: 20 }),
    ]);
    return organizationPage(
      viewer,
      { org, admins, events, snapshot, notifications, traffic, access: access.records },
      options,
    );
  }
}
