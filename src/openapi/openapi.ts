import type { INestApplication } from '@nestjs/common';
import {
  DocumentBuilder,
  OpenAPIObject,
  OperationObject,
  PathItemObject,
  ResponseObject,
  SchemaObject,
  SwaggerModule,
} from '@nestjs/swagger';

import { ErrorCode } from 'src/common/errors/domain-error';
import { GATEWAY_CONCURRENCY_RANGE, GATEWAY_RATE_RANGE } from 'src/config/env.schema';

import { MANAGEMENT_SCHEMAS } from './management-schemas';

/** Where the app serves its OpenAPI document (JSON only: Swagger UI's page carries inline styles, which the CSP forbids). */
export const OPENAPI_PATH = '/api/openapi.json';

/** The security schemes' names, as the controllers' decorators name them. */
export const SESSION_SCHEME = 'session';
/** Auth's session cookie (SESSION_COOKIE in src/auth/http-session.middleware.ts, internal to Auth). */
const SESSION_COOKIE = 'ec.sid';
export const CSRF_SCHEME = 'csrf';
export const API_KEY_SCHEME = 'apiKey';

/** The names of the shared schemas under `components.schemas`. */
export const ERROR_SCHEMA = 'ErrorResponse';
export const OPERATION_OUTCOME_SCHEMA = 'OperationOutcome';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The one JSON error body of every management route (src/common/README.md). */
const errorResponseSchema: SchemaObject = {
  type: 'object',
  required: ['statusCode', 'code', 'message'],
  properties: {
    statusCode: { type: 'integer', example: 409 },
    code: { type: 'string', enum: Object.values(ErrorCode), example: ErrorCode.NotConnected },
    message: {
      oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
      description: 'Safe to show. A validation failure lists every message.',
    },
    fields: {
      type: 'object',
      additionalProperties: { type: 'array', items: { type: 'string' } },
      description: 'VALIDATION_FAILED only: the messages by field (a nested field by its path, `a.b`).',
    },
  },
};

/** A FHIR R4 OperationOutcome, as the gateway answers its errors (only what it fills in). */
const operationOutcomeSchema: SchemaObject = {
  type: 'object',
  required: ['resourceType', 'issue'],
  properties: {
    resourceType: { type: 'string', enum: ['OperationOutcome'] },
    issue: {
      type: 'array',
      items: {
        type: 'object',
        required: ['severity', 'code'],
        properties: {
          severity: { type: 'string', enum: ['fatal', 'error', 'warning', 'information'] },
          code: {
            type: 'string',
            description: 'FHIR IssueType (security, forbidden, throttled, transient…)',
          },
          diagnostics: { type: 'string' },
          details: {
            type: 'object',
            properties: { text: { type: 'string' } },
          },
        },
      },
    },
  },
};

/** What a key holder sees of an API key (ApiKeyView): never the secret or its hash. */
const apiKeyViewSchema: SchemaObject = {
  type: 'object',
  properties: {
    keyId: { type: 'string', example: 'a1b2c3d4e5f6' },
    prefix: { type: 'string', example: 'ecgk_a1b2c3d4e5f6' },
    organizationId: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    access: { type: 'string', enum: ['read', 'read_write'] },
    resourceTypes: { type: 'array', items: { type: 'string' }, nullable: true },
    userConnections: { type: 'boolean' },
    state: { type: 'string', enum: ['active', 'expired', 'revoked'] },
    expiresAt: { type: 'string', format: 'date-time', nullable: true },
    revokedAt: { type: 'string', format: 'date-time', nullable: true },
    lastUsedAt: { type: 'string', format: 'date-time', nullable: true },
    createdBy: { type: 'string', format: 'uuid', nullable: true },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
};

const createdApiKeySchema: SchemaObject = {
  type: 'object',
  required: ['key', 'secret'],
  properties: {
    key: ref('ApiKeyView'),
    secret: {
      type: 'string',
      description:
        '`ecgk_<keyId>_<secret>`, sent as `Authorization: Bearer …`: in this answer only, never stored.',
    },
  },
};

/** The gateway limits in force for an organization (its override, else the configured default). */
const gatewayLimitsSchema: SchemaObject = {
  type: 'object',
  required: ['ratePerSecond', 'concurrency'],
  properties: {
    ratePerSecond: {
      type: 'integer',
      minimum: GATEWAY_RATE_RANGE.min,
      maximum: GATEWAY_RATE_RANGE.max,
      description: 'Requests the organization may start per second, all instances together.',
    },
    concurrency: {
      type: 'integer',
      minimum: GATEWAY_CONCURRENCY_RANGE.min,
      maximum: GATEWAY_CONCURRENCY_RANGE.max,
      description: 'Requests the organization may have in flight at once, all instances together.',
    },
  },
};

const outcome = (description: string, headers: ResponseObject['headers'] = {}): ResponseObject => ({
  description,
  headers,
  content: { 'application/fhir+json': { schema: ref(OPERATION_OUTCOME_SCHEMA) } },
});

const retryAfter = {
  'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } },
};

/** The FHIR gateway (src/gateway/README.md), every method of the FHIR RESTful API. */
function gatewayPathItem(withPath: boolean): PathItemObject {
  const parameters = [
    {
      name: 'slug',
      in: 'path' as const,
      required: true,
      schema: { type: 'string' },
      description: "The organization's slug.",
    },
    ...(withPath
      ? [
          {
            name: 'path',
            in: 'path' as const,
            required: true,
            schema: { type: 'string' },
            description:
              'The FHIR path under the base (`Patient/123`, `Observation?code=…`, `metadata`, `$export`); may hold slashes.',
          },
        ]
      : []),
    {
      name: 'X-Epic-Connect-User',
      in: 'header' as const,
      required: false,
      schema: { type: 'string', format: 'uuid' },
      description:
        "With a key that allows it (`userConnections`): send the request with that user's own connection.",
    },
  ];
  const operation = (method: string) => ({
    tags: ['FHIR gateway'],
    summary: withPath
      ? `${method} a FHIR interaction under the organization's FHIR base`
      : `${method} the organization's FHIR base (batch, transaction, paging)`,
    description:
      "Forwarded to the organization's Epic or SMART on FHIR server with its own connection; every URL of the " +
      "server in the answer is replaced by the gateway's. A `read` key may GET, HEAD and search; other " +
      'interactions need `read_write`.',
    security: [{ [API_KEY_SCHEME]: [] }],
    parameters,
    responses: {
      '200': { description: "The FHIR server's answer (any FHIR status and body passes through)." },
      '400': outcome('Not a FHIR path.'),
      '401': outcome('No API key, or an unknown, expired or revoked one.', {
        'WWW-Authenticate': { schema: { type: 'string' } },
      }),
      '403': outcome(
        'The key may not do this (access, resource types, another organization, a user connection).',
      ),
      '404': outcome(
        'Not served by the gateway: `.well-known/*` (it is no SMART server), or a Bulk Data job URL this ' +
          'key did not start through the gateway.',
      ),
      '429': outcome(
        "Over the organization's rate or concurrency limit, or this client sent too many refused API keys.",
        retryAfter,
      ),
      '502': outcome(
        'The FHIR server could not be reached, or answered with something unusable (a CapabilityStatement ' +
          'the gateway cannot read to replace its security).',
      ),
      '503': outcome(
        'The organization is not connected, or its connection needs re-authentication.',
        retryAfter,
      ),
      '504': outcome(
        'The FHIR server did not answer in time, or went silent before its answer began ' +
          '(`GATEWAY_UPSTREAM_IDLE_MS`); one that goes silent midway is cut off (the connection is closed).',
      ),
    },
  });
  const methods = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const;
  return Object.fromEntries([...methods.map((m) => [m, operation(m.toUpperCase())])]) as PathItemObject;
}

/**
 * The OpenAPI 3 document of the gateway and the JSON management routes, generated from the
 * controllers' Swagger decorators. The gateway's catch-all route is described here by hand (one
 * path per shape, each FHIR method), with the error shapes that the decorators refer to.
 */
export function buildOpenApiDocument(app: INestApplication, publicBaseUrl: string): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('epic-connect')
    .setDescription(
      'The FHIR gateway (an API key per organization) and the JSON management API (a signed-in ' +
        'session; writes also need the CSRF token in `x-csrf-token`). Errors of the management API ' +
        'have one body (`ErrorResponse`); the gateway answers FHIR OperationOutcomes.',
    )
    .setVersion('1')
    .addServer(publicBaseUrl)
    .addCookieAuth(
      SESSION_COOKIE,
      { type: 'apiKey', in: 'cookie', description: 'The session cookie of a signed-in user (POST /login).' },
      SESSION_SCHEME,
    )
    .addApiKey(
      {
        type: 'apiKey',
        in: 'header',
        name: 'x-csrf-token',
        description:
          'The CSRF token of the session (the `csrf-token` meta element of a page): every POST, PUT, PATCH and DELETE.',
      },
      CSRF_SCHEME,
    )
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description: 'An API key of the organization (`ecgk_…`), made on its API keys page.',
      },
      API_KEY_SCHEME,
    )
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    autoTagControllers: false, // only ManagementApi's tags: an untagged route is left out below
    operationIdFactory: (controllerKey, methodKey) =>
      `${controllerKey.replace(/Controller$/, '')}_${methodKey}`,
  });
  for (const [path, item] of Object.entries(document.paths)) {
    // The gateway is one catch-all route: described by hand below, not as Nest enumerates it.
    // Pages and other routes without a ManagementApi tag (HTML, OAuth redirects, probes) are left out.
    const operations = Object.entries(item).filter(([, op]) => isOperation(op));
    if (path.startsWith('/gateway/') || !operations.some(([, op]) => (op as OperationObject).tags?.length)) {
      delete document.paths[path];
      continue;
    }
    // A path parameter bound to a DTO without Swagger metadata (ApiKeyParams' keyId) is still declared.
    for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
      for (const [, op] of operations) {
        const operation = op as OperationObject;
        operation.parameters ??= [];
        const declared = operation.parameters.some((p) => 'name' in p && p.name === name && p.in === 'path');
        if (!declared) {
          operation.parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
        }
      }
    }
  }
  document.paths['/gateway/{slug}/fhir'] = gatewayPathItem(false);
  document.paths['/gateway/{slug}/fhir/{path}'] = gatewayPathItem(true);
  document.components = {
    ...document.components,
    schemas: {
      ...document.components?.schemas,
      [ERROR_SCHEMA]: errorResponseSchema,
      [OPERATION_OUTCOME_SCHEMA]: operationOutcomeSchema,
      ApiKeyView: apiKeyViewSchema,
      CreatedApiKey: createdApiKeySchema,
      GatewayLimits: gatewayLimitsSchema,
      ...MANAGEMENT_SCHEMAS,
    },
  };
  return document;
}

/** Serves the document as JSON at OPENAPI_PATH (public: it names routes and shapes, no secret). */
export function serveOpenApi(app: INestApplication, publicBaseUrl: string): void {
  let document: OpenAPIObject | undefined;
  app.getHttpAdapter().get(OPENAPI_PATH, (_req: unknown, res: { json: (body: unknown) => void }) => {
    // Built at the first request, when every module's routes are known.
    document ??= buildOpenApiDocument(app, publicBaseUrl);
    res.json(document);
  });
}

const isOperation = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && 'responses' in value;
