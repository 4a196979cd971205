/** Field names whose values are secrets wherever they appear in a logged object. */
export const SECRET_FIELDS = [
  'password',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'password_hash',
  'secret',
  'client_secret',
  'clientSecret',
  'clientSecretEnc',
  'client_secret_enc',
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'code',
  'code_verifier',
  'codeVerifier',
  'client_assertion',
  'clientAssertion',
  'assertion',
  'authorization',
  'cookie',
  'token',
  '_csrf',
  'sessionSecret',
  'encryptionKeys',
  'privateKeyEnc',
  'private_key_enc',
  'privateJwk',
  // API keys (src/api-keys): the whole key, and the stored hash of its secret.
  'apiKey',
  'api_key',
  'secretHash',
  'secret_hash',
];

const MAX_DEPTH = 6; // pino's `*` matches one level only, so list the depths explicitly

/** pino `redact` paths: every secret field at depths 0..MAX_DEPTH, plus HTTP headers by name. */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  // axios's request config, should an AxiosError ever be logged whole.
  'err.config.headers.Authorization',
  'err.config.headers.authorization',
  '*.config.headers.Authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'req.query.code',
  'req.query.state',
  'req.query.launch',
  ...SECRET_FIELDS.flatMap((field) =>
    Array.from({ length: MAX_DEPTH + 1 }, (_, depth) => `${'*.'.repeat(depth)}${field}`),
  ),
];

/**
 * Secrets recognised by their shape, replaced in every log line as it is written (pino's
 * `hooks.streamWrite`), whatever field or message carries them: a key echoed in an error message
 * is caught as well as one in a header. An API key (`ecgk_<keyId>_<secret>`, src/api-keys) keeps
 * its public `ecgk_<keyId>` prefix, which names the key, and loses its secret.
 */
const SECRET_PATTERNS: [RegExp, string][] = [[/(ecgk_[a-z0-9]{12})_[A-Za-z0-9_-]{43}/g, '$1_[redacted]']];

/** `text` with every secret of a known shape replaced (a log line stays valid JSON: no quote is added). */
export function redactSecretPatterns(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
