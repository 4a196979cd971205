// Runs in every e2e test file before its imports: a deterministic, test-only configuration.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

process.env.NODE_ENV = 'test';
process.env.ENCRYPTION_KEYS = `test1:${randomBytes(32).toString('base64')}`;
process.env.SESSION_SECRET = randomBytes(32).toString('hex');
process.env.CRON_ENABLED = 'false';
process.env.LOG_LEVEL = 'debug';
process.env.LOG_FILE = join(
  process.env.TEST_LOG_DIR ?? '/tmp',
  `app-${process.env.JEST_WORKER_ID ?? '0'}.log`,
);
// Tests create the first root admin with a known (marked) password instead of printing one.
process.env.ROOT_ADMIN_EMAIL = 'root@localhost';
process.env.ROOT_ADMIN_PASSWORD = `root-tEsTsEcReT-${randomBytes(6).toString('hex')}`;
// Test files sign in many times from one address; the throttling test sets its own limit.
process.env.LOGIN_THROTTLE_LIMIT = '10000';
// Test files present many refused API keys from one address; bad-keys.e2e-spec.ts sets its own limit.
process.env.API_KEY_FAILURE_LIMIT = '100000';
// Tests change stored credentials directly (as time passing would) and read at once; the cache's
// own test turns it on.
process.env.CREDENTIAL_CACHE_MS = '0';
