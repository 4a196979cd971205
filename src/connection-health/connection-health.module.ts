import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ClientKeysModule } from 'src/client-keys/client-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { EpicAuthModule } from 'src/epic-auth/epic-auth.module';
import { FhirClientModule } from 'src/fhir-client/fhir-client.module';
import { MailModule } from 'src/mail/mail.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';
import { UsersModule } from 'src/users/users.module';

import { ScheduledCheckService } from './scheduled-check.service';
import { ConnectionMetrics } from './connection-metrics';
import { ConnectionNotifier } from './connection-notifier.service';
import { ConnectionStatusController } from './connection-status.controller';
import { ContactConfirmationController } from './contact-confirmation.controller';
import { Notification } from './entities/notification.entity';
import { EmailOutboxService } from './email-outbox.service';
import { ConnectionHealthIndicators } from './health-indicators';
import { HealthController } from './health.controller';
import { LoginNoticesListener } from './login-notices.listener';
import { MetricsController } from './metrics.controller';
import { NotificationsController } from './notifications.controller';
import { NotificationsService } from './notifications.service';
import { OutboxAdminService } from './outbox-admin.service';
import { OutboxController } from './outbox.controller';
import { OwnConnectionNoticesService } from './own-connection-notices.service';
import { WebhookOutboxService } from './webhook-outbox.service';

/**
 * The health of Epic connections and of this service: one state model, the scheduled expiry
 * check (once across instances), notifications to admins (in-app, webhook and email outbox), login
 * notices, the status JSON, Terminus `/health`, and Prometheus `/metrics`.
 */
@Module({
  imports: [
    TerminusModule.forRoot(),
    TypeOrmModule.forFeature([Notification]),
    ConnectionsModule,
    OrganizationsModule,
    EpicAuthModule,
    FhirClientModule,
    ClientKeysModule,
    UsersModule,
    MailModule,
  ],
  controllers: [
    HealthController,
    MetricsController,
    ConnectionStatusController,
    NotificationsController,
    OutboxController,
    ContactConfirmationController,
  ],
  providers: [
    NotificationsService,
    WebhookOutboxService,
    EmailOutboxService,
    ConnectionNotifier,
    ScheduledCheckService,
    ConnectionHealthIndicators,
    ConnectionMetrics,
    LoginNoticesListener,
    OwnConnectionNoticesService,
    OutboxAdminService,
  ],
  // AdminUi shows notifications (states and counts come from Connections), users' ended connections
  // and their email form on their pages, and the outbox's dead letters to root admins.
  exports: [NotificationsService, OwnConnectionNoticesService, OutboxAdminService],
})
export class ConnectionHealthModule {}
