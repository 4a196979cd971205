import 'reflect-metadata';

import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  Validate,
  ValidateIf,
  ValidationArguments,
  ValidatorConstraint,
  ValidatorConstraintInterface,
} from 'class-validator';
import { CronTime } from 'cron';

import { parseNetworks } from 'src/outbound/outbound-guard';

export const NODE_ENVS = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The ranges of the gateway's per-organization limits: the defaults here and a root admin's
 * override (src/gateway/throttle) alike, so the two cannot disagree.
 */
export const GATEWAY_RATE_RANGE = { min: 1, max: 10_000 } as const;
export const GATEWAY_CONCURRENCY_RANGE = { min: 1, max: 1_000 } as const;

// Reads the raw value: implicit conversion would already have made Boolean('false') === true.
const toBoolean = ({ obj, key }: { obj: Record<string, unknown>; key: string }): unknown => {
  const value = obj[key];
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  return value; // left as a string so @IsBoolean reports it
};

const isProduction = (env: EnvSchema): boolean => env.NODE_ENV === 'production';

@ValidatorConstraint({ name: 'isNetworkList' })
class IsNetworkList implements ValidatorConstraintInterface {
  private problem = '';

  validate(value: unknown): boolean {
    try {
      parseNetworks(typeof value === 'string' ? value : String(value));
      return true;
    } catch (error) {
      this.problem = (error as Error).message;
      return false;
    }
  }

  defaultMessage(): string {
    return `must be comma-separated networks: ${this.problem}`;
  }
}

@ValidatorConstraint({ name: 'isCronExpression' })
class IsCronExpression implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    try {
      new CronTime(value);
      return true;
    } catch {
      return false;
    }
  }

  defaultMessage(): string {
    return 'must be a cron expression, e.g. */15 * * * *';
  }
}

@ValidatorConstraint({ name: 'notBesideSmtpUrl' })
class NotBesideSmtpUrl implements ValidatorConstraintInterface {
  validate(_value: unknown, args: ValidationArguments): boolean {
    return (args.object as EnvSchema).SMTP_URL === undefined;
  }

  defaultMessage(): string {
    return 'set SMTP_URL or SMTP_HOST, not both';
  }
}

@ValidatorConstraint({ name: 'smtpSecureFitsUrl' })
class SmtpSecureFitsUrl implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    const url = (args.object as EnvSchema).SMTP_URL;
    if (url === undefined || value === undefined) return true;
    return /^smtps:/i.test(url) ? value === 'tls' : value !== 'tls';
  }

  defaultMessage(): string {
    return 'does not fit SMTP_URL: smtps:// is tls; smtp:// is starttls (the default) or none';
  }
}

/**
 * Every environment variable the service reads, with its default and rule.
 * `.env.example` documents the same keys; keep both in step.
 */
export class EnvSchema {
  @IsIn(NODE_ENVS)
  NODE_ENV: NodeEnv = 'development';

  @IsInt()
  @Min(0)
  @Max(65535)
  PORT: number = 3000;

  @IsString()
  HOST: string = '127.0.0.1';

  /** The absolute URL users reach the service at; redirect URIs are built from it, never from Host. */
  // Required and https in production: checked in validateEnv (class-validator cannot combine both).
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  PUBLIC_BASE_URL?: string;

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsInt()
  @Min(1)
  @Max(100)
  DATABASE_POOL_SIZE: number = 10;

  @Transform(toBoolean)
  @IsBoolean()
  MIGRATIONS_RUN: boolean = true;

  @IsString()
  @MinLength(1)
  DATA_DIR: string = './data';

  /** `id:base64key` pairs separated by commas; the first encrypts, all decrypt. */
  @ValidateIf((env: EnvSchema) => isProduction(env) || env.ENCRYPTION_KEYS !== undefined)
  @Matches(/^\s*[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=\s*(,\s*[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=\s*)*$/, {
    message: 'must be a comma-separated list of id:base64 pairs, each key 32 bytes (required in production)',
  })
  ENCRYPTION_KEYS?: string;

  /** Signs session cookies and derives the CSRF secret; comma-separated to rotate (first signs). */
  @ValidateIf((env: EnvSchema) => isProduction(env) || env.SESSION_SECRET !== undefined)
  @IsString()
  @MinLength(32, { message: 'must be at least 32 characters (required in production)' })
  SESSION_SECRET?: string;

  @IsInt()
  @Min(5)
  @Max(60 * 24 * 30)
  SESSION_TTL_MINUTES: number = 480;

  @Transform(toBoolean)
  @IsBoolean()
  TRUST_PROXY: boolean = false;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: (typeof LOG_LEVELS)[number] = 'info';

  /** Append JSON logs to this file instead of standard output (tests capture the run's log this way). */
  @IsOptional()
  @IsString()
  LOG_FILE?: string;

  @IsOptional()
  @IsEmail({ require_tld: false })
  ROOT_ADMIN_EMAIL?: string;

  @ValidateIf((env: EnvSchema) => env.ROOT_ADMIN_PASSWORD !== undefined)
  @IsString()
  @MinLength(12, { message: 'must be at least 12 characters' })
  ROOT_ADMIN_PASSWORD?: string;

  /** Login attempts allowed per client IP per LOGIN_THROTTLE_WINDOW_SECONDS. */
  @IsInt()
  @Min(1)
  LOGIN_THROTTLE_LIMIT: number = 10;

  @IsInt()
  @Min(1)
  LOGIN_THROTTLE_WINDOW_SECONDS: number = 60;

  /**
   * Failed sign-ins for one account from one client address (IPv6: its /64) within
   * ACCOUNT_LOCK_MINUTES that lock the account for that address, for ACCOUNT_LOCK_MINUTES. Other
   * addresses are unaffected, so a guesser cannot lock the owner out.
   */
  @IsInt()
  @Min(1)
  ACCOUNT_LOCK_THRESHOLD: number = 5;

  /** How long a failure counts, and how long a lock lasts. */
  @IsInt()
  @Min(1)
  @Max(24 * 60)
  ACCOUNT_LOCK_MINUTES: number = 15;

  /**
   * Failed sign-ins for one account from all addresses together within ACCOUNT_LOCK_MINUTES that
   * lock it everywhere for ACCOUNT_LOCK_MINUTES: the bound on guessing from many addresses.
   */
  @IsInt()
  @Min(1)
  ACCOUNT_LOCK_GLOBAL_THRESHOLD: number = 100;

  @Transform(toBoolean)
  @IsBoolean()
  CRON_ENABLED: boolean = true;

  /** How long discovered SMART endpoints are reused per FHIR base (Epic asks apps to cache them). */
  @IsInt()
  @Min(0)
  @Max(7 * 24 * 3600)
  DISCOVERY_CACHE_SECONDS: number = 3600;

  /** Timeout for every call to Epic (discovery, token endpoint, FHIR). */
  @IsInt()
  @Min(100)
  @Max(120_000)
  EPIC_HTTP_TIMEOUT_MS: number = 10_000;

  /** Refresh an access token this long before it expires (pre-emptive refresh). */
  @IsInt()
  @Min(0)
  @Max(3000)
  TOKEN_REFRESH_MARGIN_SECONDS: number = 300;

  /** After a refresh fails transiently, wait this long before asking Epic's token endpoint again. */
  @IsInt()
  @Min(0)
  @Max(3600)
  REFRESH_COOLDOWN_SECONDS: number = 30;

  /** Retries of an idempotent FHIR call after a network error, timeout, 5xx or 429. */
  @IsInt()
  @Min(0)
  @Max(5)
  FHIR_RETRY_ATTEMPTS: number = 2;

  /** The longest wait before a retry (backoff or Retry-After); a longer Retry-After fails the call. */
  @IsInt()
  @Min(0)
  @Max(60)
  FHIR_RETRY_MAX_WAIT_SECONDS: number = 10;

  /**
   * FHIR gateway: the longest it holds a caller's request to wait before a retry (backoff or the
   * server's Retry-After); a longer Retry-After is answered at once with 503 and that Retry-After.
   */
  @IsInt()
  @Min(0)
  @Max(60)
  GATEWAY_RETRY_AFTER_CAP_SECONDS: number = 5;

  /** FHIR gateway: the largest request body it accepts (413 above), in bytes. */
  @IsInt()
  @Min(1024)
  @Max(100 * 1024 * 1024)
  GATEWAY_MAX_REQUEST_BYTES: number = 10 * 1024 * 1024;

  /**
   * FHIR gateway: the longest the FHIR server's answer body may stay silent (no byte) while the
   * gateway waits for it; then the call to the server is aborted and the caller's answer ended
   * (504 before any byte, else cut off). Not counted while the caller is the one not reading.
   */
  @IsInt()
  @Min(100, { message: 'must be at least 100 ms' })
  @Max(600_000, { message: 'must be at most 600000 ms (10 minutes)' })
  GATEWAY_UPSTREAM_IDLE_MS: number = 30_000;

  /**
   * FHIR gateway: write a log line for every request, as for other routes. Off by default: each
   * request is kept as an access record and in the metrics already, and the line (with its request
   * logger) costs the gateway a tenth of its CPU per request. Errors are logged either way.
   */
  @Transform(toBoolean)
  @IsBoolean()
  GATEWAY_REQUEST_LOG: boolean = false;

  /** When the connection expiry check runs (cron syntax, UTC). */
  @IsString()
  @Validate(IsCronExpression)
  CONNECTION_CHECK_CRON: string = '*/15 * * * *';

  /** How long before a connection stops working its admins are warned ("expiring"). */
  @IsInt()
  @Min(1)
  @Max(60 * 24 * 30)
  EXPIRY_WARNING_MINUTES: number = 30;

  /** Refreshes the expiry check runs at once. */
  @IsInt()
  @Min(1)
  @Max(50)
  CONNECTION_CHECK_CONCURRENCY: number = 4;

  /** Optional webhook for connection notifications (JSON; Slack-compatible `text`). */
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  NOTIFY_WEBHOOK_URL?: string;

  /** Delivery attempts per webhook notification before it is parked as failed (backoff up to an hour). */
  @IsInt()
  @Min(1)
  @Max(100)
  NOTIFY_WEBHOOK_MAX_ATTEMPTS: number = 24;

  /**
   * Email (src/mail/README.md): an SMTP URL, `smtp://user:password@host:587` (STARTTLS required,
   * unless SMTP_SECURE=none) or `smtps://…:465` (TLS). Or SMTP_HOST and its companions. Unset: no email at all.
   * Never logged (it carries the password).
   */
  @IsOptional()
  @Matches(/^smtps?:\/\/[^\s]+$/, { message: 'must be an smtp:// or smtps:// URL' })
  SMTP_URL?: string;

  @IsOptional()
  @IsString()
  @Validate(NotBesideSmtpUrl)
  SMTP_HOST?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  SMTP_PORT?: number;

  @IsOptional()
  @IsString()
  SMTP_USER?: string;

  @IsOptional()
  @IsString()
  SMTP_PASSWORD?: string;

  /**
   * `tls` (implicit TLS, port 465), `starttls` (plain connection upgraded, required; port 587) or
   * `none` (no TLS: a relay on the same host only). Default: `tls` on port 465 or with `smtps://`,
   * else `starttls`. With SMTP_URL: `smtp://` is `starttls` unless `none`; `smtps://` is `tls`.
   */
  @IsOptional()
  @IsIn(['tls', 'starttls', 'none'], { message: 'must be tls, starttls or none' })
  @Validate(SmtpSecureFitsUrl)
  SMTP_SECURE?: 'tls' | 'starttls' | 'none';

  /** The sender of every email, `epic-connect <alerts@example.org>`; required when SMTP is configured. */
  @ValidateIf((env: EnvSchema) => env.SMTP_URL !== undefined || env.SMTP_HOST !== undefined)
  @IsString({ message: 'is required when SMTP_URL or SMTP_HOST is set' })
  @Matches(/^(?:[^<>\r\n]*<)?[^\s@<>]+@[^\s@<>]+>?$/, {
    message: 'must be an address, or a name and an <address> (required when SMTP_URL or SMTP_HOST is set)',
  })
  MAIL_FROM?: string;

  /** Delivery attempts per email before it is parked as failed (same backoff as the webhook). */
  @IsInt()
  @Min(1)
  @Max(100)
  MAIL_MAX_ATTEMPTS: number = 12;

  /** Emails one recipient gets per hour at most; the rest are folded into their next daily digest. */
  @IsInt()
  @Min(1)
  @Max(1000)
  MAIL_HOURLY_CAP: number = 10;

  /** The hour (UTC, 0–23) the daily digest is sent to those who chose it, and takes what the cap held back. */
  @IsInt()
  @Min(0)
  @Max(23)
  DIGEST_HOUR_UTC: number = 7;

  /** Root admins: the changes of this many seconds are folded into one message (500 organizations at once → one email). */
  @IsInt()
  @Min(0)
  @Max(3600)
  MAIL_BURST_WINDOW_SECONDS: number = 120;

  /** How often pending webhook deliveries are looked for. */
  @IsInt()
  @Min(1)
  @Max(3600)
  OUTBOX_POLL_SECONDS: number = 10;

  /**
   * `public`: connections to administrator-given addresses (Epic discovery, token, JWK Set and FHIR
   * endpoints) refuse private, loopback, link-local and reserved networks; `any`: no check.
   * Default: `public` in production, `any` elsewhere.
   */
  @IsOptional()
  @IsIn(['public', 'any'], { message: 'must be public or any' })
  OUTBOUND_ADDRESS_POLICY?: 'public' | 'any';

  /** Networks exempt from the `public` policy, comma-separated CIDRs (an on-premises Epic: 10.20.0.0/16). */
  @IsOptional()
  @Validate(IsNetworkList)
  OUTBOUND_ALLOWED_NETWORKS?: string;

  /**
   * Bearer token for /metrics (organization ids, token expiries). Unset: /metrics is open outside
   * production, and answers 404 in production (metrics are served only with a token there).
   */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'must be at least 16 characters' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'must be visible ASCII characters (it is sent in a header)' })
  METRICS_TOKEN?: string;

  /**
   * Bearer token for the /health detail (database, scheduler, connections by state, key ids).
   * Unset: open outside production, 404 in production. /health/live and /health/ready stay open.
   */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'must be at least 16 characters' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'must be visible ASCII characters (it is sent in a header)' })
  HEALTH_TOKEN?: string;

  /** How long FHIR calls share one credential lookup per connection (0: a query per call). */
  @IsInt()
  @Min(0)
  @Max(60_000)
  CREDENTIAL_CACHE_MS: number = 1000;

  /**
   * How long a verified API key is reused from memory before its row is read again (0: every
   * request reads it). A key revoked or changed on another instance is honoured within this time;
   * on the instance that revoked it, at once.
   */
  @IsInt()
  @Min(0)
  @Max(60)
  API_KEY_CACHE_SECONDS: number = 5;

  /**
   * Refused API keys one client (IP address; an IPv6 /64) may present on one instance within
   * API_KEY_FAILURE_WINDOW_SECONDS before the gateway turns it away (429) until the window ends,
   * whatever key it sends. Counted in memory per instance (no database write); 0: no limit.
   */
  @IsInt()
  @Min(0)
  @Max(100_000)
  API_KEY_FAILURE_LIMIT: number = 20;

  /** The window of API_KEY_FAILURE_LIMIT, from a client's first refused key in it. */
  @IsInt()
  @Min(1)
  @Max(3600)
  API_KEY_FAILURE_WINDOW_SECONDS: number = 60;

  /** How long a transient error must last before admins are notified (a blip that recovers is not news). */
  @IsInt()
  @Min(0)
  @Max(24 * 60)
  ERROR_NOTICE_DELAY_MINUTES: number = 5;

  /** When the signing key rotation job runs (cron syntax, UTC): it takes whatever step is due. */
  @IsString()
  @Validate(IsCronExpression)
  KEY_ROTATION_CRON: string = '*/5 * * * *';

  /**
   * How long a new signing key is published before it signs, and an old one stays published
   * after it stopped. The JWK Set is cacheable for half of it (at most an hour), so Epic sees
   * each change well inside the overlap. Epic asks for 5 minutes before an old key is removed.
   */
  @IsInt()
  @Min(300, { message: 'must be at least 300 seconds (Epic asks for 5 minutes before a key is removed)' })
  @Max(30 * 86_400)
  KEY_ROTATION_OVERLAP_SECONDS: number = 86_400;

  /** Rotate the signing keys automatically when the active one is this many days old (0: never). */
  @IsInt()
  @Min(0)
  @Max(3650)
  KEY_ROTATION_INTERVAL_DAYS: number = 90;

  /**
   * FHIR gateway throttle (src/gateway/throttle/README.md): requests each organization may start
   * per second, across all instances. A root admin may override it per organization.
   */
  @IsInt()
  @Min(GATEWAY_RATE_RANGE.min, { message: `must be at least ${GATEWAY_RATE_RANGE.min} request per second` })
  @Max(GATEWAY_RATE_RANGE.max, { message: `must be at most ${GATEWAY_RATE_RANGE.max} requests per second` })
  GATEWAY_RATE_PER_SECOND: number = 20;

  /** Gateway requests each organization may have in flight at once, across all instances (overridable). */
  @IsInt()
  @Min(GATEWAY_CONCURRENCY_RANGE.min, {
    message: `must be at least ${GATEWAY_CONCURRENCY_RANGE.min} request in flight`,
  })
  @Max(GATEWAY_CONCURRENCY_RANGE.max, {
    message: `must be at most ${GATEWAY_CONCURRENCY_RANGE.max} requests in flight`,
  })
  GATEWAY_CONCURRENCY: number = 10;

  /** Gateway requests of one organization that may wait on one instance; one more gets 429 at once. */
  @IsInt()
  @Min(1, { message: 'must be at least 1 (a request waits while its instance leases a batch)' })
  @Max(10_000, { message: 'must be at most 10000 waiting requests' })
  GATEWAY_QUEUE_MAX: number = 100;

  /** How long a gateway request may wait for its organization's slot and rate before it gets 429. */
  @IsInt()
  @Min(100, { message: 'must be at least 100 ms (a request waits while its instance leases a batch)' })
  @Max(60_000, { message: 'must be at most 60000 ms' })
  GATEWAY_QUEUE_WAIT_MS: number = 2_000;

  /** How long an EHR server's 429 without Retry-After pauses the organization's gateway traffic. */
  @IsInt()
  @Min(1, { message: 'must be at least 1 second' })
  @Max(900, { message: 'must be at most 900 seconds' })
  GATEWAY_UPSTREAM_PAUSE_SECONDS: number = 5;

  /** How long the gateway's access records are kept (src/gateway/README.md); older ones are swept hourly. */
  @IsInt()
  @Min(1, { message: 'must be at least 1 day' })
  @Max(3_650, { message: 'must be at most 3650 days' })
  GATEWAY_ACCESS_RETENTION_DAYS: number = 30;
}
