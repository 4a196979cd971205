import type { RegistrationInfo } from 'src/epic-auth/authorization.service';
import type { OrganizationView } from 'src/organizations/dto/organization.view';

import { ConnectionMode, TokenAuthMethod } from 'src/organizations/organization.types';

import { registrationPage } from './registration-page';

const org = {
  id: 'o1',
  name: 'General',
  slug: 'general',
  epicEnvironment: 'production',
  fhirBaseUrl: 'https://fhir.general.example/api/FHIR/R4',
  epicClientId: 'client-1',
  hasClientSecret: true,
  epicScopes: 'user/Patient.read',
  tokenAuthMethod: 'client_secret_post',
  scopeSyntax: 'v2',
  assertionAlg: 'RS384',
  connectionMode: 'interactive',
} as OrganizationView;

const info: RegistrationInfo = {
  connectionMode: ConnectionMode.Interactive,
  tokenAuthMethod: TokenAuthMethod.ClientSecretPost,
  jwksUrl: 'https://connect.example/.well-known/jwks.json',
  redirectUri: 'https://connect.example/fhir/epic-callback',
  ehrLaunchUrl: 'https://connect.example/fhir/epic-launch',
  scopes: {
    organization: ['openid', 'fhirUser', 'offline_access', 'user/Patient.read'],
    providerEhrLaunch: ['launch', 'openid', 'fhirUser', 'user/Patient.read'],
    patientStandalone: ['openid', 'fhirUser', 'offline_access', 'patient/Patient.read'],
  },
};

describe('registrationPage', () => {
  it('fills the form from the organization, never with the secret, and offers Connect', () => {
    const page = registrationPage(org, info);
    expect(page.form).toEqual({
      clientId: 'client-1',
      environment: 'production',
      fhirBaseUrl: 'https://fhir.general.example/api/FHIR/R4',
      scopes: 'user/Patient.read',
      tokenAuthMethod: 'client_secret_post',
      scopeSyntax: 'v2',
      assertionAlg: 'RS384',
      connectionMode: 'interactive',
    });
    expect(page.usesJwt).toBe(false);
    expect(page.backend).toBe(false);
    expect(JSON.stringify(page)).not.toMatch(/secret":\s*"[^"]/);
    expect(page.secretSaved).toBe(true);
    expect(page.canConnect).toBe(true);
    expect(page.environments.find((e) => e.selected)?.value).toBe('production');
    expect(page.authMethods.find((m) => m.selected)?.value).toBe('client_secret_post');
    expect(page.links).toEqual({
      connect: '/fhir/epic-authorize?org=o1',
      reconnect: '/connect_epic/o1',
      organization: '/admin/organizations/o1',
    });
    expect(page.title).toBe('Epic registration · General');
  });

  it('lists what to register at Epic, with the scopes of each context', () => {
    const page = registrationPage(org, info);
    expect(page.register.redirectUri).toBe('https://connect.example/fhir/epic-callback');
    expect(page.register.scopes.map((s) => s.scopes)).toEqual([
      'openid fhirUser offline_access user/Patient.read',
      'launch openid fhirUser user/Patient.read',
      'openid fhirUser offline_access patient/Patient.read',
    ]);
  });

  it('keeps what was submitted and the errors; a failed save does not count as saved', () => {
    const submitted = {
      clientId: '',
      environment: 'sandbox',
      fhirBaseUrl: 'x',
      scopes: '',
      tokenAuthMethod: '',
      scopeSyntax: '',
      assertionAlg: '',
      connectionMode: '',
    };
    const page = registrationPage(org, info, { saved: true, submitted, errors: { clientId: 'required' } });
    expect(page.form).toBe(submitted);
    expect(page).toMatchObject({ hasErrors: true, saved: false, errors: { clientId: 'required' } });
  });

  it('does not offer Connect before a client ID and base URL are saved', () => {
    expect(registrationPage({ ...org, epicClientId: null }, info).canConnect).toBe(false);
  });

  it('with private_key_jwt, shows the JWK Set URL and the signing key instead of the secret', () => {
    const page = registrationPage({ ...org, tokenAuthMethod: TokenAuthMethod.PrivateKeyJwt }, info);
    expect(page.usesJwt).toBe(true);
    expect(page.register.jwksUrl).toBe('https://connect.example/.well-known/jwks.json');
    expect(page.assertionAlgs.find((a) => a.selected)?.value).toBe('RS384');
  });

  it('for a backend service, lists only its system scopes: no launch contexts', () => {
    const page = registrationPage(
      { ...org, tokenAuthMethod: TokenAuthMethod.PrivateKeyJwt, connectionMode: ConnectionMode.Backend },
      {
        ...info,
        connectionMode: ConnectionMode.Backend,
        scopes: { organization: ['system/Patient.read'] },
      },
    );
    expect(page.backend).toBe(true);
    expect(page.connectionModes.find((m) => m.selected)?.value).toBe('backend');
    expect(page.register.scopes).toEqual([
      { context: 'This connection (backend service)', scopes: 'system/Patient.read' },
    ]);
  });
});
