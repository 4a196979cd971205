import { plainToInstance } from 'class-transformer';

import type { FieldErrors } from 'src/common/errors/domain-error';
import type { RegistrationInfo } from 'src/epic-auth/authorization.types';
import { RegisterEpicClientDto } from 'src/organizations/dto/organization.dto';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import {
  AssertionAlg,
  ConnectionMode,
  EPIC_SANDBOX_FHIR_BASE,
  EpicEnvironment,
  ScopeSyntax,
  ServerLabel,
  serverLabel,
  TokenAuthMethod,
} from 'src/organizations/organization.types';

import { GatewayInfo, gatewayInfo } from './gateway';

/** The registration form's values (never the client secret: it is write-only). */
export interface RegistrationForm {
  clientId: string;
  environment: string;
  fhirBaseUrl: string;
  /** The name an administrator gives the FHIR server (blank: decided from the base URL). */
  fhirServerName: string;
  scopes: string;
  tokenAuthMethod: string;
  basicEncoding: string;
  scopeSyntax: string;
  assertionAlg: string;
  connectionMode: string;
}

/** The registration form as posted: strings, or anything else a crafted post sends (read as blank). */
export type PostedRegistrationForm = Partial<Record<keyof RegistrationForm | 'clientSecret', unknown>>;

interface Option {
  value: string;
  label: string;
  selected: boolean;
}

export interface RegistrationPage {
  title: string;
  org: { id: string; name: string };
  /** What the page calls the saved server; Epic's own help shows only when it is Epic. */
  server: ServerLabel;
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
  basicEncodings: Option[];
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
    /**
     * The JWK Set URL of the environment the form shows (the organization's, unless a refused
     * submission chose another): each environment has its own key set and URL.
     */
    jwksUrl: string;
    /** That environment ("sandbox", "production"), named beside the URL. */
    jwksEnvironment: string;
    /** Both URLs, so the page can follow the Environment field before it is saved (null: only jwksUrl). */
    jwksUrls: Record<EpicEnvironment, string> | null;
    scopes: { context: string; scopes: string }[];
  };
  links: { connect: string; reconnect: string; organization: string };
  /** The organization's FHIR base URL at the gateway, with a `curl` example and the API keys page. */
  gateway: GatewayInfo | null;
}

/** The form's choices, worded for Epic (with Epic's own facts) or for any other SMART server. */
function choices(server: ServerLabel) {
  const epic = server.isEpic;
  return {
    environments: [
      [EpicEnvironment.Sandbox, epic ? 'Sandbox (fhir.epic.com)' : 'Sandbox (a test server)'],
      [
        EpicEnvironment.Production,
        epic ? 'Production (the organization’s own Epic)' : 'Production (the organization’s live server)',
      ],
    ] as [EpicEnvironment, string][],
    authMethods: [
      [
        TokenAuthMethod.ClientSecretBasic,
        `Client secret in the Authorization header (client_secret_basic, ${epic ? 'Epic’s' : 'the usual'} default)`,
      ],
      [TokenAuthMethod.ClientSecretPost, 'Client secret in the form body (client_secret_post)'],
      [
        TokenAuthMethod.PrivateKeyJwt,
        `JWT signed with this service’s key (private_key_jwt, ${epic ? 'recommended by Epic' : 'SMART asymmetric authentication'}; no secret)`,
      ],
    ] as [TokenAuthMethod, string][],
    assertionAlgs: [
      [AssertionAlg.RS384, epic ? 'RS384 (RSA): accepted for every Epic client' : 'RS384 (RSA)'],
      [
        AssertionAlg.ES384,
        epic ? 'ES384 (elliptic curve): Epic’s recommendation with a JWK Set URL' : 'ES384 (elliptic curve)',
      ],
    ] as [AssertionAlg, string][],
    connectionModes: [
      [
        ConnectionMode.Interactive,
        `An administrator signs in at ${server.name} (authorization code, refresh token)`,
      ],
      [
        ConnectionMode.Backend,
        epic
          ? 'Backend service: no sign-in (client_credentials; Epic “Backend Systems” app)'
          : 'Backend service: no sign-in (client_credentials; SMART Backend Services)',
      ],
    ] as [ConnectionMode, string][],
    scopeSyntaxes: [
      [
        ScopeSyntax.V1,
        epic ? 'SMART v1 (user/Patient.read): every Epic version' : 'SMART v1 (user/Patient.read)',
      ],
      [
        ScopeSyntax.V2,
        epic ? 'SMART v2 (user/Patient.rs): Epic from August 2024' : 'SMART v2 (user/Patient.rs)',
      ],
    ] as [ScopeSyntax, string][],
  };
}

/**
 * The registration page's view model: pure, from the organization and what to register at its
 * server. The wording names the saved server (server-label.ts); Epic's own help is for Epic only.
 */
export function registrationPage(
  org: OrganizationView,
  info: RegistrationInfo,
  options: {
    saved?: boolean;
    submitted?: RegistrationForm;
    errors?: Record<string, string>;
    /** Each environment's JWK Set URL (ClientKeysService.jwksUrl). */
    jwksUrls?: Record<EpicEnvironment, string>;
    /** The service's PUBLIC_BASE_URL: the page shows the organization's gateway base URL (none: no gateway panel). */
    publicBaseUrl?: string;
  } = {},
): RegistrationPage {
  const form: RegistrationForm = options.submitted ?? {
    clientId: org.epicClientId ?? '',
    environment: org.epicEnvironment,
    fhirBaseUrl: org.fhirBaseUrl ?? '',
    fhirServerName: org.fhirServerName ?? '',
    scopes: org.epicScopes,
    tokenAuthMethod: org.tokenAuthMethod,
    basicEncoding: org.basicEncoding,
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
  const server = serverLabel(org);
  const labels = choices(server);
  const formEnvironment = (Object.values(EpicEnvironment) as string[]).includes(form.environment)
    ? (form.environment as EpicEnvironment)
    : null;
  const shownEnvironment = options.jwksUrls && formEnvironment ? formEnvironment : info.environment;
  return {
    title: `${server.noun} registration · ${org.name}`,
    org: { id: org.id, name: org.name },
    server,
    form,
    errors,
    hasErrors: Object.keys(errors).length > 0,
    secretSaved: org.hasClientSecret,
    saved: options.saved === true && Object.keys(errors).length === 0,
    canConnect: !!org.epicClientId && !!org.fhirBaseUrl,
    environments: labels.environments.map(option(form.environment)),
    authMethods: labels.authMethods.map(option(form.tokenAuthMethod)),
    basicEncodings: [
      [
        'auto',
        org.basicEncodingDetected
          ? `Automatic (detected: ${org.basicEncodingDetected === 'raw' ? 'as they are' : 'form-urlencoded'})`
          : 'Automatic (detected at the first token call or Test Connection)',
      ],
      ['form-urlencoded', 'Form-urlencoded, as RFC 6749 §2.3.1 and Epic document'],
      ['raw', 'As they are (for servers that do not decode them)'],
    ].map(([value, label]) => ({ value, label, selected: value === form.basicEncoding })),
    scopeSyntaxes: labels.scopeSyntaxes.map(option(form.scopeSyntax)),
    assertionAlgs: labels.assertionAlgs.map(option(form.assertionAlg)),
    connectionModes: labels.connectionModes.map(option(form.connectionMode)),
    usesJwt: form.tokenAuthMethod === (TokenAuthMethod.PrivateKeyJwt as string),
    backend: info.connectionMode === ConnectionMode.Backend,
    sandboxBase: EPIC_SANDBOX_FHIR_BASE,
    register: {
      redirectUri: info.redirectUri,
      ehrLaunchUrl: info.ehrLaunchUrl,
      jwksUrl: options.jwksUrls?.[shownEnvironment] ?? info.jwksUrl,
      jwksEnvironment: shownEnvironment,
      jwksUrls: options.jwksUrls ?? null,
      scopes: [
        {
          context:
            info.connectionMode === ConnectionMode.Backend
              ? 'This connection (backend service)'
              : `This connection (Connect to ${server.name})`,
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
    gateway: options.publicBaseUrl ? gatewayInfo(options.publicBaseUrl, org) : null,
  };
}

const str = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');

/** What was typed, to show it again beside the messages (never the secret). */
export function submittedForm(body: PostedRegistrationForm): RegistrationForm {
  return {
    clientId: str(body.clientId),
    environment: str(body.environment),
    fhirBaseUrl: str(body.fhirBaseUrl),
    fhirServerName: str(body.fhirServerName),
    scopes: str(body.scopes),
    tokenAuthMethod: str(body.tokenAuthMethod),
    basicEncoding: str(body.basicEncoding),
    scopeSyntax: str(body.scopeSyntax),
    assertionAlg: str(body.assertionAlg),
    connectionMode: str(body.connectionMode),
  };
}

/**
 * What the form asks OrganizationsService.registerEpicClient to save. A blank optional field is
 * absent (a blank secret keeps the saved one); the server's name is always sent by the form, where
 * blank clears it, and a post without that field keeps it.
 */
export function registrationDto(body: PostedRegistrationForm): RegisterEpicClientDto {
  return plainToInstance(RegisterEpicClientDto, {
    clientId: str(body.clientId),
    clientSecret: str(body.clientSecret) || undefined,
    environment: str(body.environment),
    fhirBaseUrl: str(body.fhirBaseUrl) || undefined,
    fhirServerName: typeof body.fhirServerName === 'string' ? str(body.fhirServerName) : undefined,
    scopes: str(body.scopes),
    tokenAuthMethod: str(body.tokenAuthMethod) || undefined,
    basicEncoding: str(body.basicEncoding) || undefined,
    scopeSyntax: str(body.scopeSyntax) || undefined,
    assertionAlg: str(body.assertionAlg) || undefined,
    connectionMode: str(body.connectionMode) || undefined,
  });
}

/** Field errors (the one shape, `{ field: [messages] }`) as the form shows them: one line per field. */
export function formErrors(fields: FieldErrors): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([field, messages]) => [field, messages.join(' ')]));
}

/** The first message of each field: the form names the first rule a value broke, not every one. */
export function firstMessages(fields: FieldErrors): FieldErrors {
  return Object.fromEntries(Object.entries(fields).map(([field, messages]) => [field, messages.slice(0, 1)]));
}
