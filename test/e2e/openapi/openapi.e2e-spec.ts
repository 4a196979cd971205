import { RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ModulesContainer } from '@nestjs/core';
import { getMetadataStorage } from 'class-validator';

import { ErrorCode } from 'src/common/errors/domain-error';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { ConnectionState } from 'src/connections/connections.types';
import { GatewayTrafficService } from 'src/gateway/traffic/gateway-traffic.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

interface Operation {
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean }[];
  responses: Record<
    string,
    { headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }
  >;
  requestBody?: unknown;
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { properties?: Record<string, { enum?: string[] }>; required?: string[] }>;
    securitySchemes: Record<string, { type: string; in?: string; name?: string; scheme?: string }>;
  };
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Schema {
  $ref?: string;
  type?: 'array' | 'object' | 'integer' | 'number' | 'boolean' | 'string';
  format?: string;
  nullable?: boolean;
  enum?: unknown[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: unknown;
}

/** A route the app serves, from Nest's own metadata, with the DTO classes its `@Query()` binds whole. */
interface Route {
  method: string;
  /** In OpenAPI's form: `/api/organizations/{orgId}`. */
  path: string;
  handler: string;
  queryDtos: Type[];
}

const isDto = (type: unknown): type is Type =>
  typeof type === 'function' && ![Object, String, Number, Boolean, Array].includes(type as never);

const openApiPath = (...parts: string[]): string =>
  `/${parts.filter(Boolean).join('/')}`
    .replace(/\/+/g, '/')
    .replace(/(.)\/$/, '$1')
    .replace(/:(\w+)/g, '{$1}');

/** Every controller route of the app (each module's controllers, as the router registers them). */
function appRoutes(t: TestApp): Route[] {
  const routes = new Map<string, Route>();
  for (const module of t.app.get(ModulesContainer).values()) {
    for (const { metatype } of module.controllers.values()) {
      if (!isDto(metatype)) continue;
      const prototype = metatype.prototype as Record<string, unknown>;
      const bases = [Reflect.getMetadata(PATH_METADATA, metatype) as string | string[] | undefined].flat();
      for (const handler of Object.getOwnPropertyNames(prototype)) {
        const fn = prototype[handler];
        if (handler === 'constructor' || typeof fn !== 'function') continue;
        const subs = Reflect.getMetadata(PATH_METADATA, fn) as string | string[] | undefined;
        if (subs === undefined) continue; // not a route handler
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, fn) as RequestMethod].toLowerCase();
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, metatype, handler) ?? {}) as Record<
          string,
          { index: number; data?: unknown }
        >;
        const types = (Reflect.getMetadata('design:paramtypes', prototype, handler) ?? []) as unknown[];
        const queryDtos = Object.entries(args)
          .filter(([key, arg]) => Number(key.split(':')[0]) === Number(RouteParamtypes.QUERY) && !arg.data)
          .map(([, arg]) => types[arg.index])
          .filter(isDto);
        for (const base of bases) {
          for (const sub of [subs].flat()) {
            const path = openApiPath(base ?? '', sub);
            routes.set(`${method} ${path}`, {
              method,
              path,
              handler: `${metatype.name}.${handler}`,
              queryDtos,
            });
          }
        }
      }
    }
  }
  return [...routes.values()];
}

/** The properties class-validator checks on a DTO: what the ValidationPipe lets through. */
const validatedProperties = (dto: Type): string[] => [
  ...new Set(
    getMetadataStorage()
      .getTargetValidationMetadatas(dto, '', false, false)
      .map((m) => m.propertyName),
  ),
];

/** Where `value` departs from `schema` (resolving references in `doc`): none when it conforms. */
function departures(doc: Document, value: unknown, schema: Schema, at = '$'): string[] {
  if (schema.$ref) {
    const target = (doc.components.schemas as Record<string, Schema>)[schema.$ref.split('/').pop()!];
    return target ? departures(doc, value, target, at) : [`${at}: ${schema.$ref} does not resolve`];
  }
  if (value === null) return schema.nullable ? [] : [`${at}: null, not nullable`];
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} not in enum`];
  const wrong = (what: string) => [`${at}: ${JSON.stringify(value)} is not ${what}`];
  switch (schema.type) {
    case 'array':
      if (!Array.isArray(value)) return wrong('an array');
      return value.flatMap((item, i) => departures(doc, item, schema.items ?? {}, `${at}[${i}]`));
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return wrong('an object');
      const record = value as Record<string, unknown>;
      const properties = schema.properties ?? {};
      return [
        ...Object.keys(record)
          .filter((key) => !(key in properties) && !schema.additionalProperties)
          .map((key) => `${at}.${key}: answered, not in the schema`),
        ...(schema.required ?? []).filter((key) => !(key in record)).map((key) => `${at}.${key}: missing`),
        ...Object.entries(properties)
          .filter(([key]) => key in record)
          .flatMap(([key, sub]) => departures(doc, record[key], sub, `${at}.${key}`)),
      ];
    }
    case 'integer':
      return Number.isInteger(value) ? [] : wrong('an integer');
    case 'number':
      return typeof value === 'number' ? [] : wrong('a number');
    case 'boolean':
      return typeof value === 'boolean' ? [] : wrong('a boolean');
    case 'string':
      if (typeof value !== 'string') return wrong('a string');
      return schema.format === 'date-time' && Number.isNaN(Date.parse(value)) ? wrong('a date-time') : [];
    case undefined: // any value (oneOf and the like are not used in the answers)
      return [];
  }
}

/**
 * The OpenAPI document the app serves at /api/openapi.json: valid OpenAPI 3 (every $ref resolves,
 * every path parameter is declared, every operation answers), public, and describing the gateway,
 * the JSON management API, both security schemes and the error shapes.
 */
describe('OpenAPI document', () => {
  let t: TestApp;
  let doc: Document;

  beforeAll(async () => {
    t = await createTestApp();
    const res = await t
      .http()
      .get('/api/openapi.json')
      .expect(200)
      .expect('Content-Type', /application\/json/);
    doc = JSON.parse(res.text) as Document;
  });
  afterAll(() => t.close());

  it('is OpenAPI 3, readable without a session, with no dangling reference', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toEqual(expect.objectContaining({ title: 'epic-connect', version: expect.any(String) }));
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (m) => m[1],
    );
    expect(refs.length).toBeGreaterThan(0);
    for (const name of refs) expect(doc.components.schemas).toHaveProperty([name]);
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      for (const [method, op] of Object.entries(item)) {
        expect(METHODS).toContain(method);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
          expect(op.parameters).toContainEqual(expect.objectContaining({ name, in: 'path', required: true }));
        }
      }
    }
  });

  it('names the security schemes: the session cookie with the CSRF header, and an API key as bearer', () => {
    expect(doc.components.securitySchemes).toEqual({
      session: expect.objectContaining({ type: 'apiKey', in: 'cookie', name: 'ec.sid' }),
      csrf: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-csrf-token' }),
      apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
  });

  it('describes the API keys routes with their DTOs, the session for reads and the CSRF header for writes', () => {
    const keys = doc.paths['/api/organizations/{orgId}/api-keys'];
    const key = doc.paths['/api/organizations/{orgId}/api-keys/{keyId}'];
    expect(Object.keys(keys).sort()).toEqual(['get', 'post']);
    expect(Object.keys(key).sort()).toEqual(['delete', 'get', 'patch']);
    expect(keys.get.security).toEqual([{ session: [] }]);
    expect(keys.post.security).toEqual([{ session: [], csrf: [] }]);
    expect(JSON.stringify(keys.post.requestBody)).toContain('#/components/schemas/CreateApiKeyDto');
    expect(JSON.stringify(keys.post.responses['201'])).toContain('#/components/schemas/CreatedApiKey');
    expect(Object.keys(doc.components.schemas.CreateApiKeyDto.properties ?? {})).toEqual(
      expect.arrayContaining(['name', 'access', 'resourceTypes', 'userConnections', 'expiresAt']),
    );
    expect(JSON.stringify(key.get.responses['404'])).toContain('#/components/schemas/ErrorResponse');
  });

  it('describes the other JSON management routes and leaves the HTML pages out', () => {
    expect(Object.keys(doc.paths['/api/organizations/{orgId}/gateway-limits']).sort()).toEqual([
      'get',
      'put',
    ]);
    expect(doc.paths['/api/organizations']).toBeDefined();
    expect(doc.paths['/api/organizations/{orgId}/epic-client'].put).toBeDefined();
    expect(doc.paths['/fhir/epic-status'].get).toBeDefined();
    expect(doc.paths['/fhir/epic-registration'].get).toBeDefined();
    expect(doc.paths['/fhir/test-epic-connection'].post).toBeDefined();
    expect(doc.paths['/fhir/epic-disconnect'].post).toBeDefined();
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/admin') || p.startsWith('/login'))).toEqual(
      [],
    );
  });

  it('describes the gateway: every FHIR method, the API key, OperationOutcome errors and their headers', () => {
    for (const path of ['/gateway/{slug}/fhir', '/gateway/{slug}/fhir/{path}']) {
      const item = doc.paths[path];
      expect(Object.keys(item).sort()).toEqual(['delete', 'get', 'head', 'patch', 'post', 'put']);
      const op = item.get;
      expect(op.security).toEqual([{ apiKey: [] }]);
      expect(op.parameters).toContainEqual(
        expect.objectContaining({ name: 'X-Epic-Connect-User', in: 'header' }),
      );
      for (const status of ['401', '403', '404', '429', '502', '503', '504']) {
        expect(op.responses[status].content?.['application/fhir+json'].schema).toEqual({
          $ref: '#/components/schemas/OperationOutcome',
        });
      }
      expect(op.responses['429'].headers).toHaveProperty(['Retry-After']);
    }
    expect(doc.components.schemas.OperationOutcome.required).toEqual(['resourceType', 'issue']);
  });

  it('documents every /api route, with each query parameter its DTO validates', () => {
    const routes = appRoutes(t);
    const missing: string[] = [];
    let checked = 0;
    for (const route of routes) {
      const operation = doc.paths[route.path]?.[route.method];
      if (!operation) {
        // Pages, probes and OAuth redirects are left out; a JSON route under /api is not.
        if (route.path.startsWith('/api/')) missing.push(`${route.method} ${route.path} (${route.handler})`);
        continue;
      }
      for (const dto of route.queryDtos) {
        for (const name of validatedProperties(dto)) {
          checked += 1;
          const declared = operation.parameters?.some((p) => p.name === name && p.in === 'query');
          if (!declared) missing.push(`${route.method} ${route.path} ?${name} (${dto.name})`);
        }
      }
    }
    expect(missing).toEqual([]);
    // The walk found the routes and their DTOs (not an empty pass): organizations, audit, access…
    expect(routes.length).toBeGreaterThan(40);
    expect(checked).toBeGreaterThanOrEqual(9);
    expect(doc.paths['/api/organizations/{orgId}/gateway/access'].get.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'limit', in: 'query', required: false }),
        expect.objectContaining({ name: 'before', in: 'query', required: false }),
      ]),
    );
  });

  it('gives every 2xx JSON answer of a management route a schema, and a 204 no body', () => {
    const undescribed: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (op.tags?.includes('FHIR gateway')) continue; // FHIR: whatever the server answers
        for (const [status, response] of Object.entries(op.responses)) {
          if (!status.startsWith('2')) continue;
          if (status === '204') {
            expect(response.content).toBeUndefined();
          } else if (!response.content?.['application/json']?.schema) {
            undescribed.push(`${method} ${path} ${status}`);
          }
        }
      }
    }
    expect(undescribed).toEqual([]);
  });

  it('describes what the management routes really answer, field by field', async () => {
    const factory = new TestFactory(t);
    const org = await factory.organization();
    const rootUser = await factory.user(Role.RootAdmin, null);
    const root = await signIn(t, rootUser);
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
    // Something in every list: a notification, an access record, audit events (the creations).
    await t.app
      .get(NotificationsService)
      .create(
        t.dataSource.manager,
        org,
        ConnectionState.Expired,
        ConnectionState.Connected,
        { kind: 'attention', title: 'Expired', message: 'Reconnect', link: '/admin', text: 'Expired' },
        new Date(),
      );
    const traffic = t.app.get(GatewayTrafficService);
    traffic.requestEnded({
      organizationId: org.id,
      apiKeyId: 'a1b2c3d4e5f6',
      userId: null,
      method: 'GET',
      resourceType: 'Patient',
      status: 200,
      durationMs: 12,
      bytesSent: 345,
      at: new Date(),
    });
    await traffic.flush();
    // Dead letters for root's outbox list: an email about the notification and a webhook delivery.
    await t.dataSource.query(
      `INSERT INTO notification_outbox
              (id, notification_id, recipient_user_id, channel, payload, status, attempts, last_error,
               next_attempt_at, created_at)
       SELECT gen_random_uuid(), n.id, v.recipient, v.channel, v.payload::jsonb, 'failed', 3, v.error, now(), now()
         FROM notification n,
              (VALUES ($2::uuid, 'email', '{"to":"root-openapi@example.org"}',
                       'the SMTP server answered 451 to RCPT'),
                      (NULL::uuid, 'webhook', '{}', 'the receiver answered 503')) AS v(recipient, channel, payload, error)
        WHERE n.organization_id = $1`,
      [org.id, rootUser.id],
    );

    const calls: [method: 'get' | 'post', url: string, actor: typeof root, body?: object][] = [
      ['get', '/api/organizations', root],
      ['post', '/api/organizations', root, { name: `OpenAPI ${org.id.slice(0, 8)}` }],
      ['get', `/api/organizations/${org.id}`, admin],
      [
        'post',
        `/api/organizations/${org.id}/admins`,
        root,
        { email: `oa-${org.id.slice(0, 8)}@example.org` },
      ],
      ['get', `/api/organizations/${org.id}/admins`, admin],
      ['get', `/api/organizations/${org.id}/audit-events`, admin],
      ['get', '/api/audit-events?limit=5', root],
      ['get', '/api/notifications?unread=true', admin],
      ['get', '/api/notifications/unread-count', admin],
      ['get', '/api/notifications/outbox?status=failed', root],
      ['post', '/api/notifications/read-all', admin],
      ['get', `/api/organizations/${org.id}/gateway/access?limit=10`, admin],
      ['get', `/api/organizations/${org.id}/gateway-limits`, admin],
      ['get', `/fhir/epic-status?org=${org.id}`, admin],
      ['get', `/fhir/epic-registration?org=${org.id}`, admin],
      // Not configured: each layer answers its first step, failed (registration; token).
      ['post', '/fhir/test-epic-connection', admin, { org: org.id }],
    ];
    const templates = Object.keys(doc.paths).map((path) => ({
      path,
      pattern: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`),
    }));
    for (const [method, url, actor, body] of calls) {
      const res = await actor.agent[method](url).set('x-csrf-token', actor.csrf).send(body);
      expect([url, res.status]).toEqual([url, expect.any(Number)]);
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      const template = templates.find((p) => p.pattern.test(url.split('?')[0]))?.path;
      const schema = doc.paths[template!]?.[method]?.responses[String(res.status)]?.content?.[
        'application/json'
      ]?.schema as Schema | undefined;
      expect([url, schema]).toEqual([url, expect.any(Object)]);
      expect([url, departures(doc, res.body, schema!)]).toEqual([url, []]);
      const { records, configuration, live } = res.body as {
        records?: unknown[];
        configuration?: { steps: unknown[] };
        live?: { steps: unknown[] };
      };
      const lists = Array.isArray(res.body)
        ? [res.body as unknown[]]
        : [records, configuration?.steps, live?.steps].filter((list) => list !== undefined);
      // A list with nothing in it checks nothing.
      expect([url, lists.map((list) => list.length > 0)]).toEqual([url, lists.map(() => true)]);
    }
  });

  it('gives the one error body with every error code', () => {
    const error = doc.components.schemas.ErrorResponse;
    expect(error.required).toEqual(['statusCode', 'code', 'message']);
    expect(Object.keys(error.properties ?? {})).toEqual(['statusCode', 'code', 'message', 'fields']);
    expect(error.properties?.code.enum).toEqual(Object.values(ErrorCode));
  });
});
