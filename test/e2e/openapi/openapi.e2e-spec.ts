import { ErrorCode } from 'src/common/errors/domain-error';

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
      for (const status of ['401', '403', '429', '502', '503', '504']) {
        expect(op.responses[status].content?.['application/fhir+json'].schema).toEqual({
          $ref: '#/components/schemas/OperationOutcome',
        });
      }
      expect(op.responses['429'].headers).toHaveProperty(['Retry-After']);
    }
    expect(doc.components.schemas.OperationOutcome.required).toEqual(['resourceType', 'issue']);
  });

  it('gives the one error body with every error code', () => {
    const error = doc.components.schemas.ErrorResponse;
    expect(error.required).toEqual(['statusCode', 'code', 'message']);
    expect(Object.keys(error.properties ?? {})).toEqual(['statusCode', 'code', 'message', 'fields']);
    expect(error.properties?.code.enum).toEqual(Object.values(ErrorCode));
  });
});
