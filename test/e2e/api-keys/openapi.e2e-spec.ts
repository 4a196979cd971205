import { KEY_ID_PATTERN } from 'src/api-keys/api-key-format';

import { API_KEY_VIEW_FIELDS } from 'test/factories/api-keys';
import { createTestApp, TestApp } from 'test/setup/test-app';

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: { type?: string; format?: string; pattern?: string };
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}
interface Schema {
  type?: string;
  properties?: Record<string, Record<string, unknown>>;
  required?: string[];
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const LIST = '/api/organizations/{orgId}/api-keys';
const ONE = '/api/organizations/{orgId}/api-keys/{keyId}';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonSchema = (op: Operation, status: string): unknown =>
  op.responses[status]?.content?.['application/json']?.schema;

/**
 * The API keys routes in the app's OpenAPI document (`/api/openapi.json`): every parameter with its
 * format, every success answer with its schema, the conflicts the service answers, and the update
 * body derived from the create body (same fields, none required).
 */
describe('API keys in the OpenAPI document', () => {
  let t: TestApp;
  let doc: Document;

  beforeAll(async () => {
    t = await createTestApp();
    doc = JSON.parse((await t.http().get('/api/openapi.json').expect(200)).text) as Document;
  });
  afterAll(() => t.close());

  it('declares exactly the path parameters of each route, with their formats, and no query parameter', () => {
    const orgId = expect.objectContaining({
      name: 'orgId',
      in: 'path',
      required: true,
      schema: expect.objectContaining({ type: 'string', format: 'uuid' }),
    });
    const keyId = expect.objectContaining({
      name: 'keyId',
      in: 'path',
      required: true,
      schema: expect.objectContaining({ type: 'string', pattern: KEY_ID_PATTERN.source }),
    });
    for (const method of ['get', 'post']) expect(doc.paths[LIST][method].parameters).toEqual([orgId]);
    for (const method of ['get', 'patch', 'delete']) {
      const params = doc.paths[ONE][method].parameters ?? [];
      expect(params).toHaveLength(2);
      expect(params).toEqual(expect.arrayContaining([orgId, keyId]));
    }
  });

  it('gives every success answer its schema', () => {
    expect(jsonSchema(doc.paths[LIST].get, '200')).toEqual({
      type: 'array',
      maxItems: 500,
      items: ref('ApiKeyView'),
    });
    expect(jsonSchema(doc.paths[LIST].post, '201')).toEqual(ref('CreatedApiKey'));
    for (const method of ['get', 'patch', 'delete']) {
      expect(jsonSchema(doc.paths[ONE][method], '200')).toEqual(ref('ApiKeyView'));
    }
    const view = doc.components.schemas.ApiKeyView;
    expect(Object.keys(view.properties ?? {}).sort()).toEqual([...API_KEY_VIEW_FIELDS].sort());
    expect(Object.keys(doc.components.schemas.CreatedApiKey.properties ?? {}).sort()).toEqual([
      'key',
      'secret',
    ]);
  });

  it('names the 409s: the cap on create, a revoked or expired key on update; and every route’s error answers', () => {
    expect(jsonSchema(doc.paths[LIST].post, '409')).toEqual(ref('ErrorResponse'));
    expect(jsonSchema(doc.paths[ONE].patch, '409')).toEqual(ref('ErrorResponse'));
    expect(doc.paths[ONE].patch.responses['409'].description).toMatch(/revoked or expired/);
    for (const op of [doc.paths[LIST].get, doc.paths[ONE].get, doc.paths[ONE].delete]) {
      expect(op.responses['409']).toBeUndefined();
    }
    for (const op of [...Object.values(doc.paths[LIST]), ...Object.values(doc.paths[ONE])]) {
      for (const status of ['400', '401', '403', '404']) {
        expect(jsonSchema(op, status)).toEqual(ref('ErrorResponse'));
      }
    }
  });

  it('describes the update body as the create body with every field optional', () => {
    expect(doc.paths[ONE].patch.requestBody?.content['application/json'].schema).toEqual(
      ref('UpdateApiKeyDto'),
    );
    const create = doc.components.schemas.CreateApiKeyDto;
    const update = doc.components.schemas.UpdateApiKeyDto;
    expect(create.required).toEqual(['name']);
    expect(update.required ?? []).toEqual([]);
    expect(Object.keys(update.properties ?? {})).toEqual(Object.keys(create.properties ?? {}));
    for (const [field, schema] of Object.entries(create.properties ?? {})) {
      expect(update.properties?.[field]).toEqual(schema);
    }
  });
});
