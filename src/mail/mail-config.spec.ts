import { InvalidEnvironmentError, validateEnv } from 'src/config/validate-env';

/** The email settings as validated at boot (src/config/env.schema.ts): keys and rules, never values. */
describe('email configuration', () => {
  const problems = (raw: Record<string, string>): string => {
    try {
      validateEnv(raw);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidEnvironmentError);
      return (error as Error).message;
    }
    return '';
  };

  it('is optional: nothing set means no email, with the defaults for the rest', () => {
    const env = validateEnv({});
    expect(env.SMTP_URL).toBeUndefined();
    expect(env.SMTP_HOST).toBeUndefined();
    expect(env).toMatchObject({ MAIL_MAX_ATTEMPTS: 12, MAIL_HOURLY_CAP: 10, DIGEST_HOUR_UTC: 7 });
  });

  it('accepts an SMTP URL with a sender, or a host with its companions', () => {
    expect(
      validateEnv({
        SMTP_URL: 'smtps://u:p@mail.example.org:465',
        MAIL_FROM: 'epic-connect <a@example.org>',
      }),
    ).toMatchObject({ SMTP_URL: 'smtps://u:p@mail.example.org:465' });
    expect(
      validateEnv({
        SMTP_HOST: 'mail.example.org',
        SMTP_PORT: '587',
        SMTP_SECURE: 'starttls',
        MAIL_FROM: 'a@example.org',
      }),
    ).toMatchObject({ SMTP_PORT: 587, SMTP_SECURE: 'starttls' });
  });

  it('refuses a bad URL, both URL and host, a missing sender, a bad mode or hour, without printing the value', () => {
    const secret = 'smtp-password-do-not-print';
    const message = problems({
      SMTP_URL: `http://u:${secret}@mail.example.org`,
      SMTP_HOST: 'mail.example.org',
      SMTP_SECURE: 'ssl',
      DIGEST_HOUR_UTC: '24',
    });
    for (const key of ['SMTP_URL', 'SMTP_HOST', 'SMTP_SECURE', 'DIGEST_HOUR_UTC', 'MAIL_FROM']) {
      expect(message).toContain(key);
    }
    expect(message).not.toContain(secret);
    expect(problems({ SMTP_URL: `smtp://u:${secret}@h`, MAIL_FROM: 'not an address' })).toContain(
      'MAIL_FROM',
    );
    expect(problems({ SMTP_HOST: 'h' })).toContain('is required when SMTP_URL or SMTP_HOST is set');
  });

  it('refuses an SMTP_SECURE that contradicts the SMTP_URL scheme', () => {
    const base = { MAIL_FROM: 'a@example.org' };
    expect(problems({ ...base, SMTP_URL: 'smtp://u:p@h:587', SMTP_SECURE: 'tls' })).toContain('SMTP_SECURE');
    expect(problems({ ...base, SMTP_URL: 'smtps://u:p@h:465', SMTP_SECURE: 'none' })).toContain(
      'SMTP_SECURE',
    );
    expect(validateEnv({ ...base, SMTP_URL: 'smtp://u:p@h:25', SMTP_SECURE: 'none' })).toMatchObject({
      SMTP_SECURE: 'none',
    });
  });
});
