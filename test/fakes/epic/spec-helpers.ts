// Helpers for the fake Epic's own specs: raw HTTP, so every rejection can be asserted exactly.
import { createHash, randomBytes } from 'node:crypto';

import type { FakeEpic } from './fake-epic';
import type { FakeEpicClient, FakeEpicUser } from './types';

export interface TokenCall {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs a form to the token endpoint (or `url`). `basic` sends client_secret_basic as Epic documents. */
export async function postToken(
  epic: FakeEpic,
  form: Record<string, string | undefined>,
  options: {
    basic?: [string, string];
    url?: string;
    headers?: Record<string, string>;
    rawBody?: string;
  } = {},
): Promise<TokenCall> {
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    ...options.headers,
  };
  if (options.basic) {
    const [id, secret] = options.basic.map((v) => encodeURIComponent(v));
    headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  }
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) params.set(name, value);
  const res = await fetch(options.url ?? epic.tokenUrl, {
    method: 'POST',
    headers,
    body: options.rawBody ?? params.toString(),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** An authorize URL with sensible defaults (standalone, PKCE S256, `openid fhirUser`); `undefined` drops a parameter. */
export function authorizeUrl(
  epic: FakeEpic,
  client: FakeEpicClient,
  params: Record<string, string | undefined> = {},
): string {
  const url = new URL(client.authorizeUrl);
  const all: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUris[0],
    scope: 'openid fhirUser',
    state: 'state-123',
    aud: epic.fhirBase,
    ...params,
  };
  for (const [name, value] of Object.entries(all)) if (value !== undefined) url.searchParams.set(name, value);
  return url.toString();
}

/** Runs the authorize step and returns a code with its PKCE verifier. */
export async function obtainCode(
  epic: FakeEpic,
  client: FakeEpicClient,
  params: Record<string, string | undefined> = {},
  options: { user?: FakeEpicUser; method?: 'GET' | 'POST' } = {},
): Promise<{ code: string; verifier: string; redirectUri: string }> {
  const { verifier, challenge } = pkce();
  const result = await epic.authorizeAsUser(
    authorizeUrl(epic, client, { code_challenge: challenge, code_challenge_method: 'S256', ...params }),
    options,
  );
  if (!result.code) {
    throw new Error(`authorize failed: ${result.error} ${result.errorDescription} ${result.body}`);
  }
  return { code: result.code, verifier, redirectUri: client.redirectUris[0] };
}

/** A full code exchange with client_secret_post; returns the token response body. */
export async function obtainTokens(
  epic: FakeEpic,
  client: FakeEpicClient,
  params: Record<string, string | undefined> = {},
  options: { user?: FakeEpicUser } = {},
): Promise<Record<string, unknown>> {
  const { code, verifier, redirectUri } = await obtainCode(epic, client, params, options);
  const res = await postToken(epic, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    client_id: client.clientId,
    client_secret: client.secret,
  });
  if (res.status !== 200) throw new Error(`token failed: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function fhirGet(
  epic: FakeEpic,
  path: string,
  token?: string,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(path.startsWith('http') ? path : `${epic.fhirBase}/${path}`, {
    headers: { Accept: 'application/fhir+json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}
