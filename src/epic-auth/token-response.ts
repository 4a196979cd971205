/** The parts of an Epic token response the app keeps, read tolerantly (docs/epic-and-smart.md §4). */
export interface ParsedTokenResponse {
  accessToken: string;
  /**
   * A connection is refreshable exactly when this is present, whatever `scope` says: Epic may leave
   * `offline_access` out (https://github.com/smart-on-fhir/client-js/issues/138).
   */
  refreshToken: string | null;
  expiresAt: Date;
  /** When the response was received: `expiresAt` minus this is the token's lifetime. */
  issuedAt: Date;
  /**
   * When the refresh token ends, if the server says (`refresh_token_expires_in`, sent by some
   * servers; Epic documents none: docs/epic-and-smart.md §5). Null when unknown.
   */
  refreshExpiresAt: Date | null;
  /** Granted scopes, de-duplicated case-insensitively (Epic may repeat `.Read`/`.read`). */
  scopes: string[];
  patientId: string | null;
  encounterId: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

export function parseTokenResponse(body: Record<string, unknown>, now: Date): ParsedTokenResponse {
  const accessToken = str(body.access_token);
  if (!accessToken) throw new Error('The token response has no access_token');
  const expiresIn = Number(body.expires_in);
  const seen = new Set<string>();
  const scopes = (str(body.scope) ?? '').split(/\s+/).filter((s) => {
    const key = s.toLowerCase();
    if (!s || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    accessToken,
    refreshToken: str(body.refresh_token),
    issuedAt: now,
    // Epic sends expires_in (3600); without it, assume the shortest common lifetime rather than forever.
    expiresAt: new Date(
      now.getTime() + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 300) * 1000,
    ),
    refreshExpiresAt:
      str(body.refresh_token) && Number(body.refresh_token_expires_in) > 0
        ? new Date(now.getTime() + Number(body.refresh_token_expires_in) * 1000)
        : null,
    scopes,
    patientId: str(body.patient) ?? str(body['__epic.dstu2.patient']),
    encounterId: str(body.encounter),
  };
}
