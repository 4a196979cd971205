import * as oidc from 'openid-client';

import { EpicRegistration } from 'src/organizations/organization.types';

import { StartedAuthorization } from './pending-authorization.store';
import { SmartConfiguration } from './smart-configuration';

/**
 * The authorize request of a started authorization: PKCE S256 always (RFC 7636; SMART 2), the
 * state, the nonce (openid), the exact redirect URI, and `aud` = the FHIR base (Epic requires it
 * with launch context since May 2023: https://fhir.epic.com/Documentation?docId=oauth2tutorial);
 * `launch` echoes an EHR launch.
 */
export async function authorizeUrl(
  server: SmartConfiguration,
  registration: EpicRegistration,
  started: StartedAuthorization,
  request: { scope: string; launch?: string },
): Promise<URL> {
  const url = new URL(server.authorizationEndpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: registration.clientId,
    redirect_uri: started.redirectUri,
    scope: request.scope,
    state: started.state,
    aud: registration.fhirBaseUrl,
    code_challenge: await oidc.calculatePKCECodeChallenge(started.codeVerifier),
    code_challenge_method: 'S256',
    nonce: started.nonce,
    ...(request.launch ? { launch: request.launch } : {}),
  };
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url;
}
