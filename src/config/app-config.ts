import { resolve } from 'node:path';

import { EnvSchema } from './env.schema';
import { loadOrCreateLocalSecrets } from './local-secrets';

/** Values derived once from the validated environment; injected with `@Inject(APP_CONFIG)`. */
export interface AppConfig {
  env: EnvSchema;
  isProduction: boolean;
  /** Absolute base URL without a trailing slash; redirect URIs are built from it, never from Host. */
  publicBaseUrl: string;
  /** Cookies get `Secure` when users reach the service over https. */
  secureCookies: boolean;
  dataDir: string;
  encryptionKeys: string;
  /** First signs, all verify. */
  sessionSecrets: string[];
  /** Where the secrets came from, for the start-up log (never the secrets themselves). */
  secretsSource: 'environment' | 'generated' | 'data-dir';
}

export const APP_CONFIG = Symbol('APP_CONFIG');

export function buildAppConfig(env: EnvSchema): AppConfig {
  const publicBaseUrl = (env.PUBLIC_BASE_URL ?? `http://localhost:${env.PORT}`).replace(/\/+$/, '');
  const dataDir = resolve(env.DATA_DIR);
  let encryptionKeys = env.ENCRYPTION_KEYS;
  let sessionSecret = env.SESSION_SECRET;
  let secretsSource: AppConfig['secretsSource'] = 'environment';
  if (!encryptionKeys || !sessionSecret) {
    // Production never gets here: validateEnv requires both keys when NODE_ENV=production.
    const { secrets, created } = loadOrCreateLocalSecrets(dataDir);
    encryptionKeys ??= secrets.encryptionKeys;
    sessionSecret ??= secrets.sessionSecret;
    secretsSource = created ? 'generated' : 'data-dir';
  }
  return {
    env,
    isProduction: env.NODE_ENV === 'production',
    publicBaseUrl,
    secureCookies: publicBaseUrl.startsWith('https://'),
    dataDir,
    encryptionKeys,
    sessionSecrets: sessionSecret
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    secretsSource,
  };
}
