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
