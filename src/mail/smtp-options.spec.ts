import { messageIdDomain, smtpOptions } from './smtp-options';

describe('smtpOptions', () => {
  it('is null without SMTP_URL or SMTP_HOST: no email at all', () => {
    expect(smtpOptions({})).toBeNull();
  });

  it('hands SMTP_URL to nodemailer as is, with timeouts', () => {
    expect(smtpOptions({ SMTP_URL: 'smtps://u:p@mail.example.org' })).toMatchObject({
      url: 'smtps://u:p@mail.example.org',
      connectionTimeout: 10_000,
    });
  });

  it('smtp:// URLs require STARTTLS (no downgrade to a plain-text login) unless SMTP_SECURE=none', () => {
    expect(smtpOptions({ SMTP_URL: 'smtp://u:p@mail.example.org:587' })).toMatchObject({
      url: 'smtp://u:p@mail.example.org:587',
      requireTLS: true,
      ignoreTLS: false,
    });
    expect(smtpOptions({ SMTP_URL: 'smtp://u:p@127.0.0.1:25', SMTP_SECURE: 'none' })).toMatchObject({
      requireTLS: false,
      ignoreTLS: true,
    });
  });

  it('SMTP_HOST defaults to STARTTLS on 587, required (no silent plain-text login)', () => {
    expect(smtpOptions({ SMTP_HOST: 'mail.example.org', SMTP_USER: 'u', SMTP_PASSWORD: 'p' })).toMatchObject({
      host: 'mail.example.org',
      port: 587,
      secure: false,
      requireTLS: true,
      ignoreTLS: false,
      auth: { user: 'u', pass: 'p' },
    });
  });

  it('port 465 or SMTP_SECURE=tls is implicit TLS; none is plain', () => {
    expect(smtpOptions({ SMTP_HOST: 'h', SMTP_PORT: 465 })).toMatchObject({ port: 465, secure: true });
    expect(smtpOptions({ SMTP_HOST: 'h', SMTP_SECURE: 'tls' })).toMatchObject({ port: 465, secure: true });
    expect(smtpOptions({ SMTP_HOST: 'h', SMTP_PORT: 25, SMTP_SECURE: 'none' })).toMatchObject({
      port: 25,
      secure: false,
      requireTLS: false,
      ignoreTLS: true,
    });
    expect(smtpOptions({ SMTP_HOST: 'h' })).not.toHaveProperty('auth');
  });

  it('takes the Message-ID domain from the public URL', () => {
    expect(messageIdDomain('https://connect.example.org/base')).toBe('connect.example.org');
  });
});
