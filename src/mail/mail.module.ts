import { Module } from '@nestjs/common';

import { MailPreferencesService } from './mail-preferences.service';
import { MailRenderService } from './mail-render.service';
import { MailService } from './mail.service';
import { UnsubscribeController } from './unsubscribe.controller';

/**
 * Email: the SMTP transport (SMTP_URL or SMTP_HOST…, none when unset), message rendering from
 * `views/mail/`, per-user preferences and the one-click unsubscribe route. It decides nothing about
 * who is told what: ConnectionHealth queues, composes and delivers notices through its outbox.
 */
@Module({
  controllers: [UnsubscribeController],
  providers: [MailService, MailRenderService, MailPreferencesService],
  exports: [MailService, MailRenderService, MailPreferencesService],
})
export class MailModule {}
