/**
 * The FHIR gateway as the pages show it: an organization's FHIR base URL and a ready `curl` call.
 * The URL is the one the gateway answers at and rewrites the server's URLs to
 * (`<PUBLIC_BASE_URL>/gateway/<org-slug>/fhir`, src/gateway/README.md).
 */
export interface GatewayInfo {
  baseUrl: string;
  /** A search with the key as a shell variable: never a real key. */
  curlExample: string;
  /** The organization's API keys page, where a key is made. */
  apiKeysPage: string;
}

/** The environment variable the examples read the key from. */
export const KEY_VARIABLE = 'EPIC_CONNECT_KEY';

export function gatewayBaseUrl(publicBaseUrl: string, slug: string): string {
  return `${publicBaseUrl.replace(/\/+$/, '')}/gateway/${encodeURIComponent(slug)}/fhir`;
}

export function gatewayInfo(publicBaseUrl: string, org: { id: string; slug: string }): GatewayInfo {
  const baseUrl = gatewayBaseUrl(publicBaseUrl, org.slug);
  return {
    baseUrl,
    curlExample: `curl -H "Authorization: Bearer $${KEY_VARIABLE}" -H "Accept: application/fhir+json" "${baseUrl}/Patient?name=smith"`,
    apiKeysPage: `/admin/organizations/${org.id}/api-keys`,
  };
}
