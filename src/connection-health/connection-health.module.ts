import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ClientKeysModule } from 'src/client-keys/client-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { EpicAuthModule } from 'src/epic-auth/epic-auth.module';
import { FhirClientModule } from 'src/fhir-client/fhir-client.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { ScheduledCheckService } from './scheduled-check.service';
import { ConnectionMetrics } from './connection-metrics';
import { ConnectionNotifier } from './connection-notifier.service';
import { ConnectionStatusController } from './connection-status.controller';
import { Notification } from './entities/notification.entity';
import { ConnectionHealthIndicators } from './health-indicators';
import { HealthController } from './health.controller';
import { LoginNoticesListener } from './login-notices.listener';
import { MetricsController } from './metrics.controller';
import { NotificationsController } from './notifications.controller';
import { NotificationsService } from './notifications.service';
import { WebhookOutboxService } from './webhook-outbox.service';

/**
 * The health of Epic connections and of this service: one state model, the scheduled expiry
 * check (once across instances), notifications to admins (in-app and webhook outbox), login
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
  ],
  controllers: [HealthController, MetricsController, ConnectionStatusController, NotificationsController],
  providers: [
    NotificationsService,
    WebhookOutboxService,
    ConnectionNotifier,
    ScheduledCheckService,
    ConnectionHealthIndicators,
    ConnectionMetrics,
    LoginNoticesListener,
  ],
  // AdminUi shows notifications (states and counts come from Connections).
  exports: [NotificationsService],
})
export class ConnectionHealthModule {}
