/**
 * The claims of a private_key_jwt client assertion as Epic checks them (RFC 7523 §3; Epic OAuth 2.0 spec,
 * "Creating a JWT": https://fhir.epic.com/Documentation?docId=oauth2; docs/epic-and-smart.md §3),
 * applied to what openid-client (oauth4webapi) builds: it already sets `iss` = `sub` = client_id
 * and a fresh random string `jti` per call, but puts the issuer in `aud` and stamps `iat`/`nbf`
 * with the exact current second, which a server whose clock runs a little behind rejects.
 */

/** How far `iat`/`nbf` are back-dated: a token endpoint whose clock is this far behind still accepts. */
export const ASSERTION_BACKDATE_SECONDS = 30;
/** `exp` − `iat`: under Epic's 5-minute maximum, so `exp` stays within it even with the back-dating. */
export const ASSERTION_LIFETIME_SECONDS = 240;

export interface AssertionHeader {
  alg?: string;
  kid?: string;
  typ?: string;
  [name: string]: unknown;
}

export interface AssertionPayload {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  jti?: string;
  iat?: number;
  nbf?: number;
  exp?: number;
  [name: string]: unknown;
}

/**
 * Sets `aud` to the exact token endpoint the assertion is sent to, back-dates `iat` and `nbf`, and
 * bounds `exp`; names the signing key in `kid` and the type in `typ`. `nowSeconds` is the client's clock.
 */
export function shapeClientAssertion(
  header: AssertionHeader,
  payload: AssertionPayload,
  args: { tokenEndpoint: string; kid: string; nowSeconds: number },
): void {
  const issuedAt = Math.floor(args.nowSeconds) - ASSERTION_BACKDATE_SECONDS;
  header.kid = args.kid;
  header.typ = 'JWT';
  payload.aud = args.tokenEndpoint;
  payload.iat = issuedAt;
  payload.nbf = issuedAt;
  payload.exp = issuedAt + ASSERTION_LIFETIME_SECONDS;
}
