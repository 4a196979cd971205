import type { ReferenceObject, SchemaObject } from '@nestjs/swagger';

import { ConnectionState } from 'src/connections/connections.types';
import {
  AssertionAlg,
  BasicCredentialEncoding,
  ConnectionMode,
  EpicEnvironment,
  ScopeSyntax,
  TokenAuthMethod,
} from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';

/**
 * The answers of the JSON management routes, under `components.schemas`. The views they describe
 * are TypeScript interfaces (no runtime metadata), so they are written here; the OpenAPI e2e test
 * compares each with what its route really answers, field by field, so the two cannot drift.
 */

const uuid: SchemaObject = { type: 'string', format: 'uuid' };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const nullable = (schema: SchemaObject): SchemaObject => ({ ...schema, nullable: true });
const object = (
  properties: Record<string, SchemaObject | ReferenceObject>,
  description?: string,
): SchemaObject => ({
  type: 'object',
  ...(description ? { description } : {}),
  required: Object.keys(properties),
  properties,
});
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const organizationView = {
  id: uuid,
  name: { type: 'string' },
  slug: { type: 'string', description: 'The gateway base is `/gateway/<slug>/fhir`.' },
  epicEnvironment: { type: 'string', enum: Object.values(EpicEnvironment) },
  fhirBaseUrl: nullable({ type: 'string', format: 'uri' }),
  fhirServerName: nullable({ type: 'string' }),
  serverName: {
    type: 'string',
    description: 'What the pages call the server ("Epic", "the EHR", its name).',
  },
  isEpic: { type: 'boolean' },
  epicClientId: nullable({ type: 'string' }),
  hasClientSecret: { type: 'boolean', description: 'A client secret is stored (it is never returned).' },
  epicScopes: { type: 'string', description: 'The data scopes requested, space-separated.' },
  tokenAuthMethod: { type: 'string', enum: Object.values(TokenAuthMethod) },
  basicEncoding: { type: 'string', enum: Object.values(BasicCredentialEncoding) },
  basicEncodingDetected: nullable({ type: 'string', enum: ['form-urlencoded', 'raw'] }),
  scopeSyntax: { type: 'string', enum: Object.values(ScopeSyntax) },
  assertionAlg: { type: 'string', enum: Object.values(AssertionAlg) },
  connectionMode: { type: 'string', enum: Object.values(ConnectionMode) },
  createdAt: dateTime,
  updatedAt: dateTime,
} satisfies Record<string, SchemaObject>;

const organizationJson = {
  ...organizationView,
  isConnected: { type: 'boolean' },
  tokenExpiry: nullable(dateTime),
  lastSync: nullable(dateTime),
  lastError: nullable({ type: 'string' }),
  lastErrorAt: nullable(dateTime),
} satisfies Record<string, SchemaObject>;

const userView = {
  id: uuid,
  email: { type: 'string', format: 'email' },
  role: { type: 'string', enum: Object.values(Role) },
  organizationId: nullable(uuid),
  disabled: { type: 'boolean' },
  mustChangePassword: { type: 'boolean' },
  lastLoginAt: nullable(dateTime),
  createdAt: dateTime,
} satisfies Record<string, SchemaObject>;

const accessRecord = {
  id: { type: 'string' },
  apiKeyId: { type: 'string', description: 'The public id of the key (`ecgk_<apiKeyId>`).' },
  userId: nullable({ ...uuid, description: 'The user whose own connection served the request.' }),
  method: { type: 'string' },
  resourceType: nullable({ type: 'string', description: 'Never the resource id, query or body.' }),
  status: { type: 'integer', description: '499: the caller left before any answer.' },
  durationMs: { type: 'integer' },
  bytesSent: { type: 'integer' },
  at: dateTime,
} satisfies Record<string, SchemaObject>;

const connectionStatus = {
  configured: { type: 'boolean', description: 'A client ID and FHIR base URL are registered.' },
  connected: { type: 'boolean', description: 'The state is connected, expiring or error.' },
  expired: { type: 'boolean' },
  expiresAt: nullable({
    ...dateTime,
    description: 'When the held access token ends; null unless connected.',
  }),
  refreshable: { type: 'boolean' },
  scopes: { type: 'array', items: { type: 'string' }, description: 'Empty unless connected.' },
  patientId: nullable({ type: 'string' }),
  lastSync: nullable(dateTime),
  lastError: nullable({ type: 'string' }),
  lastErrorAt: nullable(dateTime),
  callbackUrl: { type: 'string', format: 'uri', description: 'The exact redirect URI to register.' },
  state: { type: 'string', enum: Object.values(ConnectionState) },
  endsAt: nullable({ ...dateTime, description: 'When the connection stops working without a new sign-in.' }),
  serverName: { type: 'string' },
  isEpic: { type: 'boolean' },
} satisfies Record<string, SchemaObject>;

const scopeList = (description: string): SchemaObject => ({
  type: 'array',
  items: { type: 'string' },
  description,
});

const registrationInfo = {
  connectionMode: {
    type: 'string',
    enum: Object.values(ConnectionMode),
    description: "How the organization's own connection is made. A backend service uses neither URI.",
  },
  redirectUri: { type: 'string', format: 'uri', description: 'The exact redirect URI to register at Epic.' },
  ehrLaunchUrl: {
    type: 'string',
    format: 'uri',
    description: 'The EHR launch URL, naming the organization.',
  },
  environment: {
    type: 'string',
    enum: Object.values(EpicEnvironment),
    description: 'Which of the service’s key sets (and JWK Set URL) the organization uses.',
  },
  jwksUrl: {
    type: 'string',
    format: 'uri',
    description: 'The JWK Set URL to register at Epic for private_key_jwt (one per environment).',
  },
  tokenAuthMethod: { type: 'string', enum: Object.values(TokenAuthMethod) },
  scopes: {
    type: 'object',
    required: ['organization'],
    properties: {
      organization: scopeList("What the organization's own connection requests."),
      providerEhrLaunch: scopeList('What a provider EHR launch requests; absent for a backend service.'),
      patientStandalone: scopeList(
        'What a patient standalone launch requests; absent for a backend service.',
      ),
    },
  },
} satisfies Record<string, SchemaObject>;

const testStep = {
  name: {
    type: 'string',
    description:
      'configuration: registration, discovery, credentials, authorize-url (not for a backend service); ' +
      'live: token, metadata, patient.',
  },
  ok: { type: 'boolean' },
  message: { type: 'string' },
  durationMs: { type: 'integer' },
} satisfies Record<string, SchemaObject>;

const testLayer = {
  ok: { type: 'boolean' },
  message: { type: 'string', description: "The failing step's message, or what passed." },
  durationMs: { type: 'integer', description: 'The sum of the steps’.' },
  steps: {
    type: 'array',
    items: ref('ConnectionTestStep'),
    description: 'In order, up to and including the first that failed (the rest are not run).',
  },
} satisfies Record<string, SchemaObject>;

/** The management answers by schema name (the decorators name them: JsonResponse). */
export const MANAGEMENT_SCHEMAS = {
  Organization: object(organizationJson, "An organization's registration and its own connection's health."),
  RegisteredEpicClient: object(
    {
      ...organizationJson,
      secretCleared: { type: 'boolean', description: 'The stored client secret was removed.' },
    },
    'The organization after its Epic client was registered.',
  ),
  User: object(userView, 'A user (never the password hash).'),
  CreatedOrgAdmin: {
    type: 'object',
    required: ['user'],
    properties: {
      user: ref('User'),
      temporaryPassword: {
        type: 'string',
        description: 'Only when none was given: shown in this answer only, to be changed at first sign-in.',
      },
    },
  },
  AuditEvent: object({
    id: { type: 'string' },
    occurredAt: dateTime,
    actor: nullable({ type: 'string', description: "The actor's email or a system name." }),
    actorUserId: nullable(uuid),
    organizationId: nullable(uuid),
    organization: nullable({ type: 'string', description: "The organization's name." }),
    action: { type: 'string', example: 'gateway-limits.changed' },
    outcome: { type: 'string', enum: ['success', 'failure'] },
    detail: { type: 'object', additionalProperties: true, description: 'Never a secret or token.' },
  }),
  Notification: object({
    id: uuid,
    organizationId: uuid,
    organizationName: { type: 'string' },
    kind: { type: 'string', enum: ['attention', 'resolved'] },
    state: { type: 'string', enum: Object.values(ConnectionState) },
    previousState: nullable({ type: 'string', enum: Object.values(ConnectionState) }),
    title: { type: 'string' },
    message: { type: 'string' },
    link: nullable({ type: 'string' }),
    createdAt: dateTime,
    read: { type: 'boolean' },
  }),
  OutboxEntry: object(
    {
      id: uuid,
      channel: { type: 'string', enum: ['email', 'webhook'] },
      status: { type: 'string', enum: ['failed', 'pending'] },
      recipient: {
        type: 'string',
        description: "An email's address; `webhook` for a webhook (never its URL).",
      },
      organizationId: nullable(uuid),
      organizationName: nullable({ type: 'string' }),
      attempts: { type: 'integer' },
      lastError: nullable({ type: 'string', description: 'Why the last attempt failed, in safe words.' }),
      createdAt: dateTime,
      nextAttemptAt: dateTime,
    },
    'One delivery of the notification outbox (never its message body).',
  ),
  UnreadCount: object({ unread: { type: 'integer' } }),
  MarkedRead: object({ marked: { type: 'integer', description: 'How many were marked read.' } }),
  GatewayAccessRecord: object(accessRecord, 'One gateway request of an API key.'),
  GatewayAccessPage: object({
    records: { type: 'array', items: ref('GatewayAccessRecord'), description: 'Newest first.' },
    nextBefore: nullable({
      type: 'string',
      description: 'Pass as `before` for the next (older) page; null on the last one.',
    }),
  }),
  ConnectionStatus: object(connectionStatus, 'The connection state and what the registration page shows.'),
  RegistrationInfo: object(
    registrationInfo,
    'What to register at Epic, shown on the registration page to copy.',
  ),
  ConnectionTestStep: object(testStep, 'One step of a Test Connection layer.'),
  ConnectionTestLayer: object(testLayer, 'One layer of a Test Connection: configuration or live.'),
  ConnectionTestResult: object(
    {
      ok: { type: 'boolean', description: 'Both layers passed.' },
      organizationId: uuid,
      testedAt: dateTime,
      configuration: ref('ConnectionTestLayer'),
      live: ref('ConnectionTestLayer'),
    },
    "The registration page's Test Connection: the configuration, then a live call with the stored token.",
  ),
} satisfies Record<string, SchemaObject>;

export type ManagementSchema = keyof typeof MANAGEMENT_SCHEMAS;
