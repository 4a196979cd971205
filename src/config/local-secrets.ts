import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Secrets generated for a development install that configured none. Never used in production. */
export interface LocalSecrets {
  encryptionKeys: string;
  sessionSecret: string;
}

export const LOCAL_SECRETS_FILE = 'local-secrets.json';

/**
 * Reads `DATA_DIR/local-secrets.json`, creating it (mode 0600) on first start. Losing the file
 * makes every stored secret unreadable, which is why production must configure keys explicitly.
 */
export function loadOrCreateLocalSecrets(dataDir: string): { secrets: LocalSecrets; created: boolean } {
  const file = join(dataDir, LOCAL_SECRETS_FILE);
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalSecrets>;
    if (!parsed.encryptionKeys || !parsed.sessionSecret) throw new Error(`${file} is incomplete`);
    return { secrets: parsed as LocalSecrets, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const secrets: LocalSecrets = {
    encryptionKeys: `local1:${randomBytes(32).toString('base64')}`,
    sessionSecret: randomBytes(48).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secrets, created: true };
}
