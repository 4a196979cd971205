import type { RegistrationInfo } from 'src/epic-auth/authorization.service';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import {
  AssertionAlg,
  ConnectionMode,
  EPIC_SANDBOX_FHIR_BASE,
  EpicEnvironment,
  ScopeSyntax,
  TokenAuthMethod,
} from 'src/organizations/organization.types';

/** The registration form's values (never the client secret: it is write-only). */
export interface RegistrationForm {
  clientId: string;
  environment: string;
  fhirBaseUrl: string;
  scopes: string;
  tokenAuthMethod: string;
  scopeSyntax: string;
  assertionAlg: string;
  connectionMode: string;
}

interface Option {
  value: string;
  label: string;
  selected: boolean;
}

export interface RegistrationPage {
  title: string;
  org: { id: string; name: string };
  form: RegistrationForm;
  /** Messages by field name, shown beside the field. */
  errors: Record<string, string>;
  hasErrors: boolean;
  secretSaved: boolean;
  /** Just saved: the page runs Test Connection after a second. */
  saved: boolean;
  /** Credentials are saved: Connect is offered. */
  canConnect: boolean;
  environments: Option[];
  authMethods: Option[];
  scopeSyntaxes: Option[];
  assertionAlgs: Option[];
  connectionModes: Option[];
  /** The form's current choice: private_key_jwt hides the secret and shows the JWK Set URL. */
  usesJwt: boolean;
  /** The saved connection mode: a backend service connects with a POST, no sign-in, no launch URLs. */
  backend: boolean;
  sandboxBase: string;
  register: {
    redirectUri: string;
    ehrLaunchUrl: string;
    jwksUrl: string;
    scopes: { context: string; scopes: string }[];
  };
  links: { connect: string; reconnect: string; organization: string };
}

const ENVIRONMENTS: [EpicEnvironment, string][] = [
  [EpicEnvironment.Sandbox, 'Sandbox (fhir.epic.com)'],
  [EpicEnvironment.Production, 'Production (the organization’s own Epic)'],
];
const AUTH_METHODS: [TokenAuthMethod, string][] = [
  [
    TokenAuthMethod.ClientSecretBasic,
    'Client secret in the Authorization header (client_secret_basic, Epic’s default)',
  ],
  [TokenAuthMethod.ClientSecretPost, 'Client secret in the form body (client_secret_post)'],
  [
    TokenAuthMethod.PrivateKeyJwt,
    'JWT signed with this service’s key (private_key_jwt, recommended by Epic; no secret)',
  ],
];

const ASSERTION_ALGS: [AssertionAlg, string][] = [
  [AssertionAlg.RS384, 'RS384 (RSA): accepted for every Epic client'],
  [AssertionAlg.ES384, 'ES384 (elliptic curve): Epic’s recommendation with a JWK Set URL'],
];

const CONNECTION_MODES: [ConnectionMode, string][] = [
  [ConnectionMode.Interactive, 'An administrator signs in at Epic (authorization code, refresh token)'],
  [ConnectionMode.Backend, 'Backend service: no sign-in (client_credentials; Epic “Backend Systems” app)'],
];

const SCOPE_SYNTAXES: [ScopeSyntax, string][] = [
  [ScopeSyntax.V1, 'SMART v1 (user/Patient.read): every Epic version'],
  [ScopeSyntax.V2, 'SMART v2 (user/Patient.rs): Epic from August 2024'],
];

/** The registration page's view model: pure, from the organization and what to register at Epic. */
export function registrationPage(
  org: OrganizationView,
  info: RegistrationInfo,
  options: { saved?: boolean; submitted?: RegistrationForm; errors?: Record<string, string> } = {},
): RegistrationPage {
  const form: RegistrationForm = options.submitted ?? {
    clientId: org.epicClientId ?? '',
    environment: org.epicEnvironment,
    fhirBaseUrl: org.fhirBaseUrl ?? '',
    scopes: org.epicScopes,
    tokenAuthMethod: org.tokenAuthMethod,
    scopeSyntax: org.scopeSyntax,
    assertionAlg: org.assertionAlg,
    connectionMode: org.connectionMode,
  };
  const errors = options.errors ?? {};
  const option =
    (selected: string) =>
    ([value, label]: [string, string]): Option => ({
      value,
      label,
      selected: value === selected,
    });
  return {
    title: `Epic registration · ${org.name}`,
    org: { id: org.id, name: org.name },
    form,
    errors,
    hasErrors: Object.keys(errors).length > 0,
    secretSaved: org.hasClientSecret,
    saved: options.saved === true && Object.keys(errors).length === 0,
    canConnect: !!org.epicClientId && !!org.fhirBaseUrl,
    environments: ENVIRONMENTS.map(option(form.environment)),
    authMethods: AUTH_METHODS.map(option(form.tokenAuthMethod)),
    scopeSyntaxes: SCOPE_SYNTAXES.map(option(form.scopeSyntax)),
    assertionAlgs: ASSERTION_ALGS.map(option(form.assertionAlg)),
    connectionModes: CONNECTION_MODES.map(option(form.connectionMode)),
    usesJwt: form.tokenAuthMethod === (TokenAuthMethod.PrivateKeyJwt as string),
    backend: info.connectionMode === ConnectionMode.Backend,
    sandboxBase: EPIC_SANDBOX_FHIR_BASE,
    register: {
      redirectUri: info.redirectUri,
      ehrLaunchUrl: info.ehrLaunchUrl,
      jwksUrl: info.jwksUrl,
      scopes: [
        {
          context:
            info.connectionMode === ConnectionMode.Backend
              ? 'This connection (backend service)'
              : 'This connection (Connect to Epic)',
          scopes: info.scopes.organization.join(' '),
        },
        ...(info.scopes.providerEhrLaunch
          ? [{ context: 'Provider EHR launch', scopes: info.scopes.providerEhrLaunch.join(' ') }]
          : []),
        ...(info.scopes.patientStandalone
          ? [{ context: 'Patient standalone launch', scopes: info.scopes.patientStandalone.join(' ') }]
          : []),
      ],
    },
    links: {
      connect: `/fhir/epic-authorize?org=${org.id}`,
      reconnect: `/connect_epic/${org.id}`,
      organization: `/admin/organizations/${org.id}`,
    },
  };
}
