import { Response } from 'supertest';

import { FakeEpic, FakeEpicOptions, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization } from './gateway-harness';

/** A FHIR JSON answer, as these tests read it. */
interface FhirJson {
  resourceType: string;
  id: string;
  total: number;
  type: string;
  link: { relation: string; url: string }[];
  entry: { fullUrl: string; resource: FhirJson; request: { method: string } }[];
  issue: { code: string; diagnostics: string }[];
  [field: string]: unknown;
}

/** The test app's PUBLIC_BASE_URL (the default): every URL the gateway gives out starts with it. */
const PUBLIC = 'http://localhost:3000';

/**
 * The gateway forwards every FHIR interaction to the organization's server with the organization's
 * token and gives the answer back with every URL under the server's base rewritten to the gateway's:
 * read, vread, search (GET and POST), history, paging, create, update, patch, delete, metadata, the
 * FHIR headers both ways, upstream errors unchanged.
 */
describe('FHIR gateway forwarding', () => {
  let t: TestApp;
  // One app for both servers: passport's session deserializers are global, so an app closed
  // earlier in the same file would still be asked to read sessions.
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  describe.each<[string, FakeEpicOptions]>([
    ['Epic as documented', {}],
    [
      'a server that escapes slashes in JSON, sends relative Locations and pages at the base',
      { jsonSlashEscaping: true, locationHeader: 'relative', pagingLinks: 'getpages' },
    ],
    ['a server that escapes slashes in JSON as \\u002F', { jsonSlashEscaping: 'unicode' }],
    ['a server that compresses its answers (gzip)', { answerCoding: 'gzip' }],
  ])('against %s', (_name, options) => {
    let epic: FakeEpic;
    let org: GatewayOrganization;
    let key: string;

    beforeAll(async () => {
      epic = await startFakeEpic(options);
      org = await gatewayOrganization(t, epic);
      key = (await createApiKey(org, { access: 'read_write' })).secret;
    });
    afterAll(() => epic.close());

    const gw = () => ({
      get: (path: string) => t.http().get(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
      head: (path: string) => t.http().head(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
      post: (path: string) => t.http().post(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
      put: (path: string) => t.http().put(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
      patch: (path: string) => t.http().patch(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
      delete: (path: string) => t.http().delete(`${org.base}${path}`).set('Authorization', `Bearer ${key}`),
    });
    const gatewayBase = () => `${PUBLIC}${org.base}`;

    /** No byte of the answer, and no header, names the FHIR server. */
    function expectNoUpstream(res: Response): void {
      const upstream = new URL(epic.fhirBase).host;
      expect(res.text ?? '').not.toContain(upstream);
      expect(JSON.stringify(res.headers)).not.toContain(upstream);
    }

    /** JSON body whatever the server's escaping (supertest parses application/fhir+json). */
    const json = (res: Response) => JSON.parse(res.text) as FhirJson;

    it("answers metadata with the gateway's own URL and security, not the server's", async () => {
      const res = await gw().get('/metadata').set('Accept', 'application/fhir+json').expect(200);
      expect(json(res)).toMatchObject({
        resourceType: 'CapabilityStatement',
        implementation: { url: gatewayBase() },
      });
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      // The server's OAuth endpoints (SMART oauth-uris) are not the gateway's: an API key is.
      const [rest] = json(res).rest as { security: { description: string } }[];
      expect(rest.security.description).toContain('API key');
      expectNoUpstream(res);
    });

    it("answers metadata in XML when XML is asked, with the gateway's security, not the server's", async () => {
      for (const [header, value] of [
        ['Accept', 'application/fhir+xml'],
        ['Accept', 'application/xml'],
      ]) {
        const res = await gw().get('/metadata').buffer(true).set(header, value).expect(200);
        expect(res.headers['content-type']).toMatch(/^application\/fhir\+xml/);
        const xml = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : res.text;
        expect(xml).toContain('<CapabilityStatement xmlns="http://hl7.org/fhir">');
        expect(xml).toContain(`<url value="${gatewayBase()}"/>`);
        // The server's OAuth endpoints (SMART oauth-uris) are gone; the gateway's API key is said.
        expect(xml).not.toContain('oauth-uris');
        expect(xml).toMatch(/<security><cors value="false"\/><description value="An API key/);
        expect(xml).toContain('<resource><type value="Patient"/>');
        expect(xml).not.toContain(new URL(epic.fhirBase).host);
      }
    });

    it('refuses a CapabilityStatement it cannot read (502), never passing on the server security', async () => {
      const serverSecurity = `{"resourceType":"CapabilityStatement","rest":[{"security":{"description":"${epic.tokenUrl}"}`;
      for (const [body, contentType] of [
        [serverSecurity, 'application/fhir+json'], // cut off: not JSON
        [serverSecurity, 'text/plain'], // no FHIR type
        [`<CapabilityStatement><rest><security>${epic.tokenUrl}`, 'text/plain'], // XML, unbalanced
      ]) {
        epic.failNext('metadata', { status: 200, body, contentType });
        const res = await gw().get('/metadata').set('Accept', 'application/fhir+json').expect(502);
        expect(json(res)).toMatchObject({ resourceType: 'OperationOutcome' });
        expectNoUpstream(res);
      }
    });

    it('is no SMART server: .well-known is 404 and never forwarded', async () => {
      const before = epic.requests().length;
      const res = await gw().get('/.well-known/smart-configuration').expect(404);
      expect(json(res).resourceType).toBe('OperationOutcome');
      expect(epic.requests().length).toBe(before);
    });

    it('reads with ETag and Last-Modified, and answers a conditional read 304', async () => {
      const res = await gw().get(`/Patient/${SEED.camila}`).expect(200);
      expect(json(res)).toMatchObject({ resourceType: 'Patient', id: SEED.camila });
      expect(res.headers.etag).toBe('W/"1"');
      expect(res.headers['last-modified']).toBe('Wed, 15 Jan 2025 10:00:00 GMT');
      // If-None-Match and If-Modified-Since reach the server (FHIR R4 §3.1.0.2.1).
      const notModified = await gw().get(`/Patient/${SEED.camila}`).set('If-None-Match', 'W/"1"').expect(304);
      await gw()
        .get(`/Patient/${SEED.camila}`)
        .set('If-Modified-Since', res.headers['last-modified'])
        .expect(304);
      const head = await gw().head(`/Patient/${SEED.camila}`).expect(200);
      expect(head.headers.etag).toBe('W/"1"');
      // No length of their own (RFC 9110 §8.6): a HEAD's would be the GET's, a 304 has no body.
      expect(head.headers['content-length']).toBeUndefined();
      expect(notModified.headers['content-length']).toBeUndefined();
    });

    it("passes the server's errors through unchanged: status and OperationOutcome", async () => {
      const res = await gw().get('/Patient/does-not-exist').expect(404);
      expect(json(res)).toEqual({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'not-found', diagnostics: 'Patient/does-not-exist was not found' },
        ],
      });
      const missing = await gw().get('/Observation').expect(400); // the fake wants a patient
      expect(json(missing).issue[0].code).toBe('required');
    });

    it('searches and pages through the rewritten links to the end, never showing the server', async () => {
      let res = await gw().get(`/Observation?patient=${SEED.camila}&_count=4`).expect(200);
      const ids: string[] = [];
      let pages = 0;
      for (;;) {
        expectNoUpstream(res);
        if (options.jsonSlashEscaping === 'unicode') {
          // The answer keeps its encoder's style: the gateway base is written with \u002F too.
          expect(res.text).toContain(gatewayBase().split('/').join('\\u002F'));
        }
        const bundle = json(res);
        pages += 1;
        for (const entry of bundle.entry) {
          expect(entry.fullUrl).toBe(`${gatewayBase()}/Observation/${entry.resource.id}`);
          ids.push(entry.resource.id);
        }
        for (const link of bundle.link) expect(link.url.startsWith(gatewayBase())).toBe(true);
        const next: string | undefined = bundle.link.find((l) => l.relation === 'next')?.url;
        if (!next) break;
        res = await t.http().get(next.slice(PUBLIC.length)).set('Authorization', `Bearer ${key}`).expect(200);
      }
      const total = json(await gw().get(`/Observation?patient=${SEED.camila}`)).total;
      expect(pages).toBe(Math.ceil(total / 4));
      expect(new Set(ids).size).toBe(total);
    });

    it('searches with POST _search and a form body, as with GET', async () => {
      const res = await gw()
        .post('/Observation/_search')
        .type('form')
        .send({ patient: SEED.camila, category: 'vital-signs', _count: '3' })
        .expect(200);
      const bundle = json(res);
      expect(bundle.entry).toHaveLength(3);
      expect(bundle.link.find((l) => l.relation === 'next')!.url.startsWith(gatewayBase())).toBe(true);
      // The form reached the server as sent.
      expect(epic.requests('fhir').at(-1)!.form).toEqual({
        patient: SEED.camila,
        category: 'vital-signs',
        _count: '3',
      });
      expectNoUpstream(res);
    });

    it('creates, reads back, updates with If-Match, patches, reads each version, deletes', async () => {
      const patient = {
        resourceType: 'Patient',
        name: [{ family: 'Okafor', given: ['Ada'] }],
        gender: 'female',
      };
      const created = await gw()
        .post('/Patient')
        .set('Content-Type', 'application/fhir+json')
        .send(JSON.stringify(patient))
        .expect(201);
      const id = String(json(created).id);
      // Location is the gateway's (absolute at Epic; a relative one resolves against the gateway).
      const location = String(created.headers.location);
      expect([`${gatewayBase()}/Patient/${id}/_history/1`, `Patient/${id}/_history/1`]).toContain(location);
      expect(created.headers.etag).toBe('W/"1"');
      expect(created.headers['last-modified']).toBeDefined();
      expectNoUpstream(created);

      await gw().get(`/Patient/${id}`).expect(200);
      const updated = await gw()
        .put(`/Patient/${id}`)
        .set('Content-Type', 'application/fhir+json')
        .set('If-Match', 'W/"1"')
        .send(JSON.stringify({ ...patient, id, gender: 'other' }))
        .expect(200);
      expect(updated.headers.etag).toBe('W/"2"');
      expect(updated.headers['content-location']).toMatch(
        new RegExp(`(^${gatewayBase()}/|^)Patient/${id}/_history/2$`),
      );
      expectNoUpstream(updated);
      // A stale If-Match: the server's 412 comes back as it is.
      await gw()
        .put(`/Patient/${id}`)
        .set('Content-Type', 'application/fhir+json')
        .set('If-Match', 'W/"1"')
        .send(JSON.stringify({ ...patient, id }))
        .expect(412);

      const patched = await gw()
        .patch(`/Patient/${id}`)
        .set('Content-Type', 'application/json-patch+json')
        .set('If-Match', 'W/"2"')
        .send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]))
        .expect(200);
      expect(json(patched).gender).toBe('male');

      expect(json(await gw().get(`/Patient/${id}/_history/1`).expect(200)).gender).toBe('female');
      expect(json(await gw().get(`/Patient/${id}/_history/3`).expect(200)).gender).toBe('male');
      const history = await gw().get(`/Patient/${id}/_history`).expect(200);
      expect(json(history)).toMatchObject({ type: 'history', total: 3 });
      expectNoUpstream(history);

      await gw().delete(`/Patient/${id}`).expect(204);
      await gw().get(`/Patient/${id}`).expect(410);
    });

    it('passes Prefer and If-None-Exist, and the answer Prefer asked for', async () => {
      const minimal = await gw()
        .post('/Patient')
        .set('Content-Type', 'application/fhir+json')
        .set('Prefer', 'return=minimal')
        .send(JSON.stringify({ resourceType: 'Patient', gender: 'unknown' }))
        .expect(201);
      expect(minimal.text).toBe('');
      const existing = await gw()
        .post('/Patient')
        .set('Content-Type', 'application/fhir+json')
        .set('If-None-Exist', 'identifier=203711')
        .send(JSON.stringify({ resourceType: 'Patient' }))
        .expect(200);
      expect(json(existing).id).toBe(SEED.camila);
      // Plain application/json reaches the server as sent too (no body parser reads it first).
      const plainJson = await gw()
        .post('/Patient')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ resourceType: 'Patient', gender: 'male' }))
        .expect(201);
      expect(json(plainJson).gender).toBe('male');
    });

    it("sends the organization's token, never the caller's key, cookie or other headers", async () => {
      const before = epic.calls('fhir');
      await gw()
        .get(`/Patient/${SEED.camila}`)
        .set('Cookie', 'ec.sid=s%3Asomething')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('X-Custom', 'not-for-epic')
        .expect(200);
      const sent = epic.requests('fhir').slice(before);
      expect(sent).toHaveLength(1);
      const headers = sent[0].headers;
      expect(String(headers.authorization)).toMatch(/^Bearer /);
      expect(epic.inspectToken(String(headers.authorization).slice('Bearer '.length))).toMatchObject({
        kind: 'access',
        active: true,
      });
      expect(JSON.stringify(headers)).not.toContain(key);
      expect(headers.cookie).toBeUndefined();
      expect(headers['x-forwarded-for']).toBeUndefined();
      expect(headers['x-custom']).toBeUndefined();
    });

    it('forwards the query string as it came (order, repeats, encoding)', async () => {
      const before = epic.calls('fhir');
      const query = `patient=${SEED.camila}&code=8867-4&code=http%3A%2F%2Floinc.org%7C8867-4&_count=2`;
      await gw().get(`/Observation?${query}`).expect(200);
      const sent = epic.requests('fhir').slice(before)[0];
      expect(sent.url).toBe(`${new URL(epic.fhirBase).pathname}/Observation?${query}`);
    });

    it('records the connection as synced', async () => {
      await t.dataSource.query(
        'UPDATE organization_connection SET last_sync = NULL WHERE organization_id = $1',
        [org.orgId],
      );
      await gw().get(`/Patient/${SEED.camila}`).expect(200);
      const [row] = await t.dataSource.query<{ last_sync: Date | null }[]>(
        'SELECT last_sync FROM organization_connection WHERE organization_id = $1',
        [org.orgId],
      );
      expect(row.last_sync).not.toBeNull();
    });
  });

  /**
   * The gateway asks for compressed answers (a large Bundle crosses the network in a fraction of
   * its size) and gives them to its caller decoded, its URLs rewritten like any other.
   */
  describe('against a server that compresses its answers', () => {
    let epic: FakeEpic;
    let org: GatewayOrganization;
    let key: string;

    beforeAll(async () => {
      epic = await startFakeEpic();
      org = await gatewayOrganization(t, epic);
      key = (await createApiKey(org)).secret;
    });
    afterEach(() => {
      epic.compressAnswers(undefined);
      epic.clearFaults();
    });
    afterAll(() => epic.close());

    const get = (path: string) => t.http().get(`${org.base}${path}`).set('Authorization', `Bearer ${key}`);

    it('asks for gzip and br, and answers the caller decoded whichever comes', async () => {
      const plain = await get(`/Patient/${SEED.camila}`).expect(200);
      for (const coding of ['gzip', 'br'] as const) {
        epic.compressAnswers(coding);
        const before = epic.calls('fhir');
        const res = await get(`/Patient/${SEED.camila}`).expect(200);
        const sent = epic.requests('fhir').slice(before)[0];
        expect(sent.headers['accept-encoding']).toBe('gzip, br');
        expect(sent.coding).toBe(coding);
        expect(res.headers['content-encoding']).toBeUndefined();
        expect(res.text).toBe(plain.text);
      }
      // deflate is not asked for (raw or zlib: servers differ), so a server that can only deflate
      // answers plainly.
      epic.compressAnswers('deflate');
      const before = epic.calls('fhir');
      expect((await get(`/Patient/${SEED.camila}`).expect(200)).text).toBe(plain.text);
      expect(epic.requests('fhir').slice(before)[0].coding).toBeUndefined();
    });

    it('passes an empty body that names a coding as empty, not as a broken answer', async () => {
      epic.failNext('fhir', {
        status: 200,
        body: '',
        contentType: 'application/fhir+json',
        headers: { 'Content-Encoding': 'gzip' },
      });
      const res = await get(`/Patient/${SEED.camila}`).expect(200);
      expect(res.text).toBe('');
    });

    it('streams a large compressed Bundle decoded, every URL in it rewritten', async () => {
      epic.compressAnswers('gzip');
      epic.serveLargeSearch('Observation', { entries: 2000, bytesPerEntry: 500 });
      try {
        const before = epic.calls('fhir');
        const res = await get('/Observation').expect(200);
        expect(epic.requests('fhir').slice(before)[0].coding).toBe('gzip');
        const bundle = JSON.parse(res.text) as FhirJson;
        expect(bundle.entry).toHaveLength(2000);
        expect(bundle.entry[1999].fullUrl).toBe(`${PUBLIC}${org.base}/Observation/large-1999`);
        expect(res.text).not.toContain(new URL(epic.fhirBase).host);
      } finally {
        epic.serveLargeSearch('Observation', undefined);
      }
    });

    it('refuses an answer in a coding it did not ask for, or that does not decode (502)', async () => {
      for (const coding of ['zstd', 'deflate', 'gzip']) {
        epic.failNext('fhir', {
          status: 200,
          body: '{"resourceType":"Patient"}',
          contentType: 'application/fhir+json',
          headers: { 'Content-Encoding': coding },
        });
        const res = await get(`/Patient/${SEED.camila}`).expect(502);
        expect(JSON.parse(res.text)).toMatchObject({ resourceType: 'OperationOutcome' });
        expect(res.text).not.toContain('{"resourceType":"Patient"}');
      }
    });
  });
});
