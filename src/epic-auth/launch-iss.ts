import { fhirBaseKey } from 'src/connections/connections.types';

/**
 * The `iss` of an EHR launch, normalized to compare with registered FHIR base URLs: scheme and host
 * lower-cased, default port and trailing slashes dropped, path compared case-insensitively (Epic's
 * paths are). Null when it is not an absolute http(s) URL without credentials, query or fragment.
 * Hosts are compared exactly: `fhir.example.org.evil.test` is another host (Epic asks for an `iss`
 * allow-list: https://fhir.epic.com/Documentation?docId=oauth2tutorial, "Launch Endpoint").
 */
export function normalizeIss(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return null;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password || url.search || url.hash) return null;
  return fhirBaseKey(`${url.protocol}//${url.host}${url.pathname}`);
}
