/**
 * When a token should be renewed: TOKEN_REFRESH_MARGIN_SECONDS before it ends, but never earlier than
 * halfway through its life, so a short-lived token is used before it is renewed (a 30 s token for
 * about 15 s, a 5-minute one for 2.5 minutes) instead of being refreshed before every call. Without
 * a known issue time the full margin applies.
 */
export function refreshDueAt(expiresAt: Date, issuedAt: Date | null, marginSeconds: number): Date {
  const lifetimeMs = issuedAt ? expiresAt.getTime() - issuedAt.getTime() : Infinity;
  const marginMs = Math.min(marginSeconds * 1000, Math.max(0, lifetimeMs) / 2);
  return new Date(expiresAt.getTime() - marginMs);
}
