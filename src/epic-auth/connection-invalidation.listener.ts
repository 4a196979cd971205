import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';

import { AuditService } from 'src/audit/audit.service';
import { EpicClientChangedEvent, OrganizationEvents } from 'src/organizations/organizations.events';

import { SmartDiscoveryService } from './smart-discovery.service';

/**
 * A changed Epic registration voids the organization's tokens (they belong to the old client; the
 * Organizations module ends the connection): the old server's discovery is forgotten and the clearing audited.
 */
@Injectable()
export class ConnectionInvalidationListener {
  private readonly logger = new Logger(ConnectionInvalidationListener.name);

  constructor(
    private readonly discovery: SmartDiscoveryService,
    private readonly audit: AuditService,
  ) {}

  @OnEvent(OrganizationEvents.EpicClientChanged, { promisify: true, suppressErrors: false })
  async onEpicClientChanged(event: EpicClientChangedEvent): Promise<void> {
    if (event.previousFhirBaseUrl) this.discovery.forget(event.previousFhirBaseUrl);
    // Organizations ended the connection with the change (ConnectionsService.disconnectOrganization).
    if (!event.tokensCleared) return;
    await this.audit.record({
      actor: event.actor,
      organization: { id: event.organizationId, name: event.organizationName },
      action: 'epic.tokens-cleared',
      detail: { reason: 'registration changed' },
    });
    this.logger.log({ orgId: event.organizationId }, 'Cleared Epic tokens after the registration changed');
  }
}
