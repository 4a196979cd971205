import { IsIn } from 'class-validator';

import { MAIL_MODES, type MailMode } from 'src/mail/mail.types';

/** The account page's email form: one choice per channel (src/mail/README.md). */
export class UpdateMailPreferencesDto {
  /** Connection changes of the organizations the admin looks after. */
  @IsIn(MAIL_MODES, { message: 'must be immediate, digest or off' })
  'admin-connections'!: MailMode;
}
