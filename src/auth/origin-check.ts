import { Request } from 'express';

/** Methods that change nothing (RFC 9110 §9.2.1): never checked. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a state-changing request comes from another site, by what the browser says
 * (OWASP CSRF Prevention Cheat Sheet: "Verifying Origin with standard headers" and "Fetch
 * Metadata"), in addition to the CSRF token:
 *
 * - `Sec-Fetch-Site` (sent by current browsers, not settable by scripts): `same-origin` and `none`
 *   (typed or bookmarked) pass; `same-site` and `cross-site` are refused.
 * - Otherwise `Origin`: absent passes (older browsers, non-browser clients: the CSRF token still
 *   applies); it must otherwise be PUBLIC_BASE_URL's origin (`null` is refused).
 *
 * Returns why the request is refused, or null.
 */
export function crossSiteRefusal(req: Request, ownOrigin: string): string | null {
  if (SAFE_METHODS.has(req.method)) return null;
  const fetchSite = req.headers['sec-fetch-site'];
  if (typeof fetchSite === 'string') {
    if (fetchSite === 'same-origin' || fetchSite === 'none') return null;
    return 'Cross-site request refused: it was sent from another site (Sec-Fetch-Site). Open this service’s own page and retry.';
  }
  const origin = req.headers.origin;
  if (origin === undefined || origin === ownOrigin) return null;
  return 'Cross-site request refused: it was sent from another origin (Origin). Open this service’s own page and retry.';
}
