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
  // SMTP (src/mail): the URL carries the password; nodemailer's auth object calls it `pass`.
  'smtp_url',
  'smtpUrl',
  'smtp_password',
  'smtpPassword',
  'pass',
  // Header names, should a header object ever be logged.
  'proxy-authorization',
  'x-csrf-token',
  'set-cookie',
];

const SECRET_KEYS = new Set(SECRET_FIELDS.map((field) => field.toLowerCase()));

/** Whether a key names a secret, compared case-insensitively (`Authorization` as `authorization`). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

export const CENSOR = '[redacted]';
/** Deeper than this (or past MAX_NODES values), a subtree is replaced whole: never written unchecked. */
const MAX_DEPTH = 12;
const MAX_NODES = 10_000;
const TRUNCATED = '[truncated]';

/**
 * `value` as JSON would write it, with the value of every secret-named key (SECRET_FIELDS, any case,
 * at any depth) replaced by `[redacted]`. Copy on write: objects without a secret are returned as
 * they are, and the caller's objects are never changed. Walks arrays, plain objects, class instances
 * and errors (their own enumerable keys, which is what JSON writes); leaves alone what writes itself
 * (`toJSON`: dates, buffers) and what JSON writes as `{}` (maps, sets). `skip` names top-level keys
 * left to a serializer of their own (the logger's `req`, `res` and `err`).
 *
 * One pass over what is logged, where pino's `redact` paths (fast-redact) cost a traversal per
 * wildcard path: the logger spent a quarter of the gateway's CPU per request in them.
 */
export function redactSecretFields<T>(value: T, skip?: ReadonlySet<string>): T {
  const budget = { nodes: MAX_NODES };
  return walk(value, 0, new WeakSet(), budget, skip) as T;
}

function walk(
  value: unknown,
  depth: number,
  seen: WeakSet<object>,
  budget: { nodes: number },
  skip?: ReadonlySet<string>,
): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value)) return value;
  // A cycle: its target is being copied above, so the original must not be written again here.
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH || --budget.nodes < 0) return TRUNCATED;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const out = walk(item, depth + 1, seen, budget);
        if (out !== item) (copy ??= value.slice())[i] = out;
      }
      return copy ?? value;
    }
    let copy: Record<string, unknown> | undefined;
    const source = value as Record<string, unknown>;
    for (const key of Object.keys(source)) {
      if (skip?.has(key)) continue;
      const item = source[key];
      const out = isSecretKey(key) && item !== undefined ? CENSOR : walk(item, depth + 1, seen, budget);
      if (out !== item) (copy ??= { ...source })[key] = out;
    }
    return copy ?? value;
  } finally {
    seen.delete(value);
  }
}

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
