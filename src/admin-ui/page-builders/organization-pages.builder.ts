import { Inject, Injectable } from '@nestjs/common';
import { Request } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { DomainError } from 'src/common/errors/domain-error';
import { addFlash, saveSession } from 'src/common/flash';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';
import { GatewayTrafficService } from 'src/gateway/traffic/gateway-traffic.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { AdminLayout, AdminLayoutData } from '../admin-page.interceptor';

import { ConsoleQueryDto } from '../dto/console-query.dto';
import { ConsolePage, consoleListQuery, consolePage } from '../view-models/console-page';
import {
  GatewayLimits,
  gatewayLimitsChange,
  GatewayLimitsFacts,
  gatewayLimitsFlash,
  GatewayLimitsForm,
  PostedGatewayLimitsForm,
  submittedGatewayLimitsForm,
} from '../view-models/gateway-limits';
import { OrganizationPage, organizationPage } from '../view-models/organization-page';
import type { Viewer } from '../view-models/page';
import { firstMessages, formErrors } from '../view-models/registration-page';

/** What the limits form leads to: the organization page with a message (303), or with the form's messages (400). */
export type GatewayLimitsOutcome =
  { status: 303 } | { status: 400; page: OrganizationPage & AdminLayoutData };

/** The root admin console and each organization's page: reads what they show, then maps it. */
@Injectable()
export class OrganizationPagesBuilder {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly states: ConnectionsReadModel,
    private readonly notifications: NotificationsService,
    private readonly traffic: GatewayTrafficService,
    private readonly throttle: GatewayThrottleService,
    private readonly layout: AdminLayout,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.defaultLimits = {
      ratePerSecond: config.env.GATEWAY_RATE_PER_SECOND,
      concurrency: config.env.GATEWAY_CONCURRENCY,
    };
  }

  /** `GATEWAY_RATE_PER_SECOND` and `GATEWAY_CONCURRENCY`: what an organization without an override gets. */
  private readonly defaultLimits: GatewayLimits;

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
    options: { connected: boolean; limitsForm?: { form: GatewayLimitsForm; errors: Record<string, string> } },
  ): Promise<OrganizationPage> {
    const org = await this.organizations.get(orgId);
    const [admins, events, snapshot, notifications, traffic, access, limits] = await Promise.all([
      this.organizations.listAdmins(orgId),
      this.audit.list({ organizationId: orgId, limit: 20 }),
      this.states.snapshot(orgId),
      this.notifications.list(viewer.user, { organizationId: orgId, limit: 5 }),
      this.traffic.lastDay(orgId),
      this.traffic.page(orgId, { limit: 20 }),
      this.limits(orgId),
    ]);
    return organizationPage(
      viewer,
      { org, admins, events, snapshot, notifications, traffic, access: access.records, limits },
      options,
    );
  }

  /**
   * A root admin's override of the organization's gateway limits, through
   * GatewayThrottleService.setOverride: the PUT route's service, so the same checks (FORBIDDEN for
   * anyone else, VALIDATION_FAILED naming the field) and the same audit event
   * (`gateway-limits.changed`). Field errors come back beside the fields with what was typed.
   */
  async setGatewayLimits(
    req: Request,
    viewer: Viewer,
    orgId: string,
    body: PostedGatewayLimitsForm,
  ): Promise<GatewayLimitsOutcome> {
    const org = await this.organizations.get(orgId); // first: an unknown organization is a 404
    try {
      await this.throttle.setOverride(viewer.user, orgId, gatewayLimitsChange(body));
    } catch (error) {
      if (!(error instanceof DomainError && error.fields)) throw error;
      const limitsForm = {
        form: submittedGatewayLimitsForm(body),
        errors: formErrors(firstMessages(error.fields)),
      };
      const page = await this.organization(viewer, orgId, { connected: false, limitsForm });
      return { status: 400, page: await this.layout.decorate(req, page) };
    }
    addFlash(req.session, gatewayLimitsFlash(org.name, await this.limits(orgId)));
    await saveSession(req.session); // before the redirect, which the browser follows at once
    return { status: 303 };
  }

  /** The stored override (not the limits in force: an override equal to a default must read as one). */
  private async limits(orgId: string): Promise<GatewayLimitsFacts> {
    return { override: await this.throttle.override(orgId), defaults: this.defaultLimits };
  }
}
