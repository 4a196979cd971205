const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function isLoopback(hostname: string): boolean {
  return (
    LOOPBACK_HOSTS.has(hostname) || hostname.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(hostname)
  );
}

/**
 * Checks a FHIR base URL: https, or http only for a loopback host outside production (the fake
 * Epic in development and tests). Returns the normalised URL (no trailing slash, no query or
 * fragment) or a message saying which rule failed.
 */
export function checkFhirBaseUrl(
  value: string,
  options: { production: boolean },
): { ok: true; url: string } | { ok: false; message: string } {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return {
      ok: false,
      message: 'fhirBaseUrl must be an absolute URL such as https://fhir.example.org/api/FHIR/R4',
    };
  }
  if (url.username || url.password) return { ok: false, message: 'fhirBaseUrl must not contain credentials' };
  if (url.search || url.hash) {
    return { ok: false, message: 'fhirBaseUrl must not have a query string or fragment' };
  }
  if (url.protocol === 'http:') {
    if (!isLoopback(url.hostname)) return { ok: false, message: 'fhirBaseUrl must use https' };
    if (options.production) return { ok: false, message: 'fhirBaseUrl must use https in production' };
  } else if (url.protocol !== 'https:') {
    return { ok: false, message: 'fhirBaseUrl must use https' };
  }
  // Origin and path only: a lone `?` or `#` (empty search and hash) is not kept either.
  return { ok: true, url: `${url.origin}${url.pathname}`.replace(/\/+$/, '') };
}

/** A URL-safe slug from a name: "St. Mary's Hospital" → "st-marys-hospital". */
export function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100);
}
