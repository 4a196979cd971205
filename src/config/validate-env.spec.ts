import { InvalidEnvironmentError, validateEnv } from './validate-env';

const KEY = 'k1:' + Buffer.alloc(32, 7).toString('base64');

describe('validateEnv', () => {
  it('applies defaults when nothing is set', () => {
    const env = validateEnv({});
    expect(env.PORT).toBe(3000);
    expect(env.NODE_ENV).toBe('development');
    expect(env.MIGRATIONS_RUN).toBe(true);
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('converts numbers and booleans from strings', () => {
    const env = validateEnv({ PORT: '8080', MIGRATIONS_RUN: 'false', CRON_ENABLED: '0' });
    expect(env.PORT).toBe(8080);
    expect(env.MIGRATIONS_RUN).toBe(false);
    expect(env.CRON_ENABLED).toBe(false);
  });

  it('keeps only its own keys', () => {
    const env = validateEnv({ PATH: '/bin', SOME_TOKEN: 'x' }) as unknown as Record<string, unknown>;
    expect(env.PATH).toBeUndefined();
    expect(env.SOME_TOKEN).toBeUndefined();
  });

  it('names the bad key and rule but never the value', () => {
    const secretish = 'postgres-password-do-not-print';
    let error: unknown;
    try {
      validateEnv({ PORT: '99999', DATABASE_URL: `mysql://u:${secretish}@h/db`, MIGRATIONS_RUN: 'maybe' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidEnvironmentError);
    const message = (error as Error).message;
    expect(message).toContain('PORT');
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain('MIGRATIONS_RUN');
    expect(message).not.toContain(secretish);
    expect(message).not.toContain('99999');
    expect(message).not.toContain('maybe');
  });

  it('requires an encryption key, a session secret and https in production', () => {
    expect(() => validateEnv({ NODE_ENV: 'production', PUBLIC_BASE_URL: 'http://app.example.org' })).toThrow(
      /ENCRYPTION_KEYS.*SESSION_SECRET.*|PUBLIC_BASE_URL/,
    );
    const message = (() => {
      try {
        validateEnv({ NODE_ENV: 'production', PUBLIC_BASE_URL: 'http://app.example.org' });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message).toContain('ENCRYPTION_KEYS');
    expect(message).toContain('SESSION_SECRET');
    expect(message).toContain('PUBLIC_BASE_URL');
  });

  it('requires PUBLIC_BASE_URL in production even when unset', () => {
    expect(() =>
      validateEnv({ NODE_ENV: 'production', ENCRYPTION_KEYS: KEY, SESSION_SECRET: 'x'.repeat(40) }),
    ).toThrow(/PUBLIC_BASE_URL: required in production/);
  });

  it('accepts a complete production configuration', () => {
    const env = validateEnv({
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://connect.example.org',
      ENCRYPTION_KEYS: `${KEY}, k0:${Buffer.alloc(32, 1).toString('base64')}`,
      SESSION_SECRET: 'x'.repeat(40),
      DATABASE_URL: 'postgres://db/epic',
    });
    expect(env.NODE_ENV).toBe('production');
  });

  it('rejects an encryption key of the wrong length', () => {
    expect(() => validateEnv({ ENCRYPTION_KEYS: 'k1:' + Buffer.alloc(16).toString('base64') })).toThrow(
      /ENCRYPTION_KEYS/,
    );
  });

  it('defaults the signing key rotation to every 5 minutes, a day of overlap, every 90 days', () => {
    const env = validateEnv({});
    expect(env.KEY_ROTATION_CRON).toBe('*/5 * * * *');
    expect(env.KEY_ROTATION_OVERLAP_SECONDS).toBe(86400);
    expect(env.KEY_ROTATION_INTERVAL_DAYS).toBe(90);
  });

  it('accepts a 300-second overlap and a rotation interval of 0 (never automatically)', () => {
    const env = validateEnv({ KEY_ROTATION_OVERLAP_SECONDS: '300', KEY_ROTATION_INTERVAL_DAYS: '0' });
    expect(env.KEY_ROTATION_OVERLAP_SECONDS).toBe(300);
    expect(env.KEY_ROTATION_INTERVAL_DAYS).toBe(0);
  });

  it('accepts an outbound address policy and allowed networks, and names a bad network', () => {
    const env = validateEnv({
      OUTBOUND_ADDRESS_POLICY: 'public',
      OUTBOUND_ALLOWED_NETWORKS: '10.20.0.0/16, fd00::/8',
    });
    expect(env.OUTBOUND_ADDRESS_POLICY).toBe('public');
    expect(() => validateEnv({ OUTBOUND_ADDRESS_POLICY: 'open' })).toThrow(
      /OUTBOUND_ADDRESS_POLICY: must be public or any/,
    );
    expect(() => validateEnv({ OUTBOUND_ALLOWED_NETWORKS: '10.0.0.0/8, intranet' })).toThrow(
      /OUTBOUND_ALLOWED_NETWORKS: must be comma-separated networks: "intranet" is not a network/,
    );
  });

  it('rejects a rotation overlap under 300 seconds, saying why', () => {
    expect(() => validateEnv({ KEY_ROTATION_OVERLAP_SECONDS: '299' })).toThrow(
      /KEY_ROTATION_OVERLAP_SECONDS: must be at least 300 seconds/,
    );
  });

  it('defaults the lockout to 5 failures per address and 100 from everywhere, for 15 minutes', () => {
    const env = validateEnv({});
    expect(env.ACCOUNT_LOCK_THRESHOLD).toBe(5);
    expect(env.ACCOUNT_LOCK_GLOBAL_THRESHOLD).toBe(100);
    expect(env.ACCOUNT_LOCK_MINUTES).toBe(15);
    expect(() => validateEnv({ ACCOUNT_LOCK_GLOBAL_THRESHOLD: '0' })).toThrow(
      /ACCOUNT_LOCK_GLOBAL_THRESHOLD/,
    );
  });

  it('takes operational tokens of at least 16 visible characters, naming the key but never the value', () => {
    const env = validateEnv({ METRICS_TOKEN: 'm'.repeat(16), HEALTH_TOKEN: 'h'.repeat(32) });
    expect(env.HEALTH_TOKEN).toBe('h'.repeat(32));
    let message = '';
    try {
      validateEnv({ HEALTH_TOKEN: 'short', METRICS_TOKEN: 'has a space in it, long enough' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('HEALTH_TOKEN: must be at least 16 characters');
    expect(message).toContain('METRICS_TOKEN: must be visible ASCII characters');
    expect(message).not.toContain('short');
    expect(message).not.toContain('has a space');
  });

  it('accepts production without operational tokens (their endpoints then answer 404)', () => {
    const env = validateEnv({
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://connect.example.org',
      ENCRYPTION_KEYS: KEY,
      SESSION_SECRET: 'x'.repeat(40),
    });
    expect(env.METRICS_TOKEN).toBeUndefined();
    expect(env.HEALTH_TOKEN).toBeUndefined();
  });

  it('caches verified API keys for 5 seconds by default, 0 to 60 allowed', () => {
    expect(validateEnv({}).API_KEY_CACHE_SECONDS).toBe(5);
    expect(validateEnv({ API_KEY_CACHE_SECONDS: '0' }).API_KEY_CACHE_SECONDS).toBe(0);
    expect(validateEnv({ API_KEY_CACHE_SECONDS: '60' }).API_KEY_CACHE_SECONDS).toBe(60);
    for (const bad of ['61', '-1', '1.5', 'soon']) {
      expect(() => validateEnv({ API_KEY_CACHE_SECONDS: bad })).toThrow(/API_KEY_CACHE_SECONDS/);
    }
  });

  it('counts 20 refused API keys per client in a 60-second window by default, 0 (no limit) to 100,000', () => {
    const defaults = validateEnv({});
    expect(defaults.API_KEY_FAILURE_LIMIT).toBe(20);
    expect(defaults.API_KEY_FAILURE_WINDOW_SECONDS).toBe(60);
    expect(validateEnv({ API_KEY_FAILURE_LIMIT: '0' }).API_KEY_FAILURE_LIMIT).toBe(0);
    expect(validateEnv({ API_KEY_FAILURE_LIMIT: '100000' }).API_KEY_FAILURE_LIMIT).toBe(100_000);
    expect(validateEnv({ API_KEY_FAILURE_WINDOW_SECONDS: '1' }).API_KEY_FAILURE_WINDOW_SECONDS).toBe(1);
    expect(validateEnv({ API_KEY_FAILURE_WINDOW_SECONDS: '3600' }).API_KEY_FAILURE_WINDOW_SECONDS).toBe(3600);
    for (const bad of ['100001', '-1', '2.5', 'many']) {
      expect(() => validateEnv({ API_KEY_FAILURE_LIMIT: bad })).toThrow(/API_KEY_FAILURE_LIMIT/);
    }
    for (const bad of ['0', '3601', '1.5', 'a minute']) {
      expect(() => validateEnv({ API_KEY_FAILURE_WINDOW_SECONDS: bad })).toThrow(
        /API_KEY_FAILURE_WINDOW_SECONDS/,
      );
    }
  });

  it('names the bad API key failure settings but never their values', () => {
    let message = '';
    try {
      validateEnv({ API_KEY_FAILURE_LIMIT: 'lots-of-failures', API_KEY_FAILURE_WINDOW_SECONDS: '99999' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('API_KEY_FAILURE_LIMIT');
    expect(message).toContain('API_KEY_FAILURE_WINDOW_SECONDS');
    expect(message).not.toContain('lots-of-failures');
    expect(message).not.toContain('99999');
  });

  it('rejects a bad rotation cron and a negative interval', () => {
    let message = '';
    try {
      validateEnv({ KEY_ROTATION_CRON: 'every five minutes', KEY_ROTATION_INTERVAL_DAYS: '-1' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('KEY_ROTATION_CRON: must be a cron expression');
    expect(message).toContain('KEY_ROTATION_INTERVAL_DAYS');
    expect(message).not.toContain('every five minutes');
  });
});
