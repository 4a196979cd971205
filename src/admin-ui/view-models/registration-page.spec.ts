import type { RegistrationInfo } from 'src/epic-auth/authorization.types';
import type { OrganizationView } from 'src/organizations/dto/organization.view';

import { ConnectionMode, EpicEnvironment, TokenAuthMethod } from 'src/organizations/organization.types';

import {
  firstMessages,
  formErrors,
  registrationDto,
  registrationPage,
  submittedForm,
} from './registration-page';

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
  basicEncoding: 'auto',
  basicEncodingDetected: 'raw',
  scopeSyntax: 'v2',
  assertionAlg: 'RS384',
  connectionMode: 'interactive',
} as OrganizationView;

const info: RegistrationInfo = {
  connectionMode: ConnectionMode.Interactive,
  tokenAuthMethod: TokenAuthMethod.ClientSecretPost,
  environment: EpicEnvironment.Production,
  jwksUrl: 'https://connect.example/.well-known/jwks.json',
  redirectUri: 'https://connect.example/fhir/epic-callback',
  ehrLaunchUrl: 'https://connect.example/fhir/epic-launch',
  scopes: {
    organization: ['openid', 'fhirUser', 'offline_access', 'user/Patient.read'],
    providerEhrLaunch: ['launch', 'openid', 'fhirUser', 'user/Patient.read'],
    patientStandalone: ['launch/patient', 'openid', 'fhirUser', 'offline_access', 'patient/Patient.read'],
  },
};

describe('registrationPage', () => {
  it('fills the form from the organization, never with the secret, and offers Connect', () => {
    const page = registrationPage(org, info);
    expect(page.form).toEqual({
      clientId: 'client-1',
      environment: 'production',
      fhirBaseUrl: 'https://fhir.general.example/api/FHIR/R4',
      fhirServerName: '',
      scopes: 'user/Patient.read',
      tokenAuthMethod: 'client_secret_post',
      basicEncoding: 'auto',
      scopeSyntax: 'v2',
      assertionAlg: 'RS384',
      connectionMode: 'interactive',
    });
    expect(page.usesJwt).toBe(false);
    // The Basic encoding override, with what was detected.
    expect(page.basicEncodings.find((o) => o.selected)).toMatchObject({
      value: 'auto',
      label: expect.stringContaining('detected: as they are'),
    });
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

  it('shows the organization’s gateway base URL, a curl example with a placeholder key, and the keys page', () => {
    const gateway = registrationPage(org, info, { publicBaseUrl: 'https://connect.example/' }).gateway;
    expect(gateway).toEqual({
      baseUrl: 'https://connect.example/gateway/general/fhir',
      curlExample:
        'curl -H "Authorization: Bearer $EPIC_CONNECT_KEY" -H "Accept: application/fhir+json" "https://connect.example/gateway/general/fhir/Patient?name=smith"',
      apiKeysPage: '/admin/organizations/o1/api-keys',
    });
    expect(gateway?.curlExample).not.toContain('ecgk_');
    expect(registrationPage(org, info).gateway).toBeNull();
  });

  it('lists what to register at Epic, with the scopes of each context', () => {
    const page = registrationPage(org, info);
    expect(page.register.redirectUri).toBe('https://connect.example/fhir/epic-callback');
    expect(page.register.scopes.map((s) => s.scopes)).toEqual([
      'openid fhirUser offline_access user/Patient.read',
      'launch openid fhirUser user/Patient.read',
      'launch/patient openid fhirUser offline_access patient/Patient.read',
    ]);
  });

  it('keeps what was submitted and the errors; a failed save does not count as saved', () => {
    const submitted = {
      clientId: '',
      environment: 'sandbox',
      fhirBaseUrl: 'x',
      fhirServerName: '',
      scopes: '',
      tokenAuthMethod: '',
      basicEncoding: '',
      scopeSyntax: '',
      assertionAlg: '',
      connectionMode: '',
    };
    const page = registrationPage(org, info, { saved: true, submitted, errors: { clientId: 'required' } });
    expect(page.form).toBe(submitted);
    expect(page).toMatchObject({ hasErrors: true, saved: false, errors: { clientId: 'required' } });
  });

  it('words the page for Epic, with Epic’s own facts, when the server is Epic', () => {
    const page = registrationPage(org, info);
    expect(page.server).toMatchObject({ name: 'Epic', isEpic: true });
    expect(page.environments.map((e) => e.label)).toEqual([
      'Sandbox (fhir.epic.com)',
      'Production (the organization’s own Epic)',
    ]);
    expect(page.register.scopes[0].context).toBe('This connection (Connect to Epic)');
  });

  it('names any other server, by the administrator’s name or as the EHR, without Epic’s help', () => {
    const smart = { ...org, fhirBaseUrl: 'https://launch.smarthealthit.org/v/r4/fhir' };
    const unnamed = registrationPage(smart, info);
    expect(unnamed.title).toBe('EHR registration · General');
    expect(unnamed.server).toMatchObject({ name: 'the EHR', isEpic: false });
    expect(unnamed.register.scopes[0].context).toBe('This connection (Connect to the EHR)');
    expect(unnamed.connectionModes[0].label).toBe(
      'An administrator signs in at the EHR (authorization code, refresh token)',
    );

    const named = registrationPage({ ...smart, fhirServerName: 'SMART Health IT' }, info);
    expect(named.title).toBe('SMART Health IT registration · General');
    expect(named.form.fhirServerName).toBe('SMART Health IT');
    expect(named.register.scopes[0].context).toBe('This connection (Connect to SMART Health IT)');
    for (const page of [unnamed, named]) {
      const labels = [
        ...page.environments,
        ...page.authMethods,
        ...page.assertionAlgs,
        ...page.connectionModes,
        ...page.scopeSyntaxes,
      ].map((o) => o.label);
      expect(labels.join(' ')).not.toMatch(/Epic|fhir\.epic\.com/);
    }
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

  it('shows the JWK Set URL of the environment in the form, and gives both for the Environment field', () => {
    const jwksUrls = {
      sandbox: 'https://connect.example/.well-known/jwks-sandbox.json',
      production: 'https://connect.example/.well-known/jwks.json',
    };
    const jwt = { ...org, tokenAuthMethod: TokenAuthMethod.PrivateKeyJwt };
    expect(registrationPage(jwt, info, { jwksUrls }).register).toMatchObject({
      jwksUrl: jwksUrls.production,
      jwksEnvironment: 'production',
      jwksUrls,
    });
    const sandbox = registrationPage({ ...jwt, epicEnvironment: EpicEnvironment.Sandbox }, info, {
      jwksUrls,
    });
    expect(sandbox.register).toMatchObject({ jwksUrl: jwksUrls.sandbox, jwksEnvironment: 'sandbox' });
    // A refused submission shows what was submitted, so the URL of the environment submitted.
    const refused = registrationPage(jwt, info, {
      jwksUrls,
      submitted: { ...sandbox.form },
      errors: { clientId: 'required' },
    });
    expect(refused.register.jwksUrl).toBe(jwksUrls.sandbox);
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

describe('the posted registration form', () => {
  const posted = {
    clientId: ' client-1 ',
    clientSecret: 'typed-secret',
    environment: 'sandbox',
    fhirBaseUrl: '',
    fhirServerName: ' Cerner ',
    scopes: 'user/Patient.read',
    tokenAuthMethod: '',
    basicEncoding: 'raw',
    scopeSyntax: ['v2'], // not a string: read as blank
  };

  it('shows again what was typed, trimmed, never the secret', () => {
    const form = submittedForm(posted);
    expect(form).toMatchObject({
      clientId: 'client-1',
      fhirServerName: 'Cerner',
      scopeSyntax: '',
      fhirBaseUrl: '',
    });
    expect(JSON.stringify(form)).not.toContain('typed-secret');
  });

  it('asks the service to save what was filled in; blank optional fields keep what is saved', () => {
    expect({ ...registrationDto(posted) }).toEqual({
      clientId: 'client-1',
      clientSecret: 'typed-secret',
      environment: 'sandbox',
      fhirBaseUrl: undefined,
      fhirServerName: 'Cerner',
      scopes: 'user/Patient.read',
      tokenAuthMethod: undefined,
      basicEncoding: 'raw',
      scopeSyntax: undefined,
      assertionAlg: undefined,
      connectionMode: undefined,
    });
    // Blank secret: keep the saved one. A blank server name clears it; no field at all keeps it.
    expect(registrationDto({ ...posted, clientSecret: ' ', fhirServerName: '' })).toMatchObject({
      clientSecret: undefined,
      fhirServerName: '',
    });
    expect(registrationDto({ clientId: 'c', environment: 'sandbox' }).fhirServerName).toBeUndefined();
  });

  it('puts field errors (the one shape) beside their fields, one line each', () => {
    const fields = {
      clientId: [
        'clientId must be 1 to 200 characters',
        'clientId may contain only visible ASCII characters',
      ],
      scopes: ['scopes must name offline_access'],
    };
    expect(formErrors(fields)).toEqual({
      clientId: 'clientId must be 1 to 200 characters clientId may contain only visible ASCII characters',
      scopes: 'scopes must name offline_access',
    });
    expect(formErrors(firstMessages(fields))).toEqual({
      clientId: 'clientId must be 1 to 200 characters',
      scopes: 'scopes must name offline_access',
    });
  });
});
