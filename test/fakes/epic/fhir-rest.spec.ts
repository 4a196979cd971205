// The FHIR API's writes, versions and the switches around URLs: create, update, patch, delete,
// vread, history, conditional requests, POST _search, paging at the base, large Bundles.
import { request as httpRequest } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

import { startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { obtainTokens } from './spec-helpers';
import type { FakeEpicOptions } from './types';

const WRITE_SCOPES = [
  'user/Patient.read',
  'user/Patient.write',
  'user/Observation.read',
  'user/Observation.write',
];

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

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: FhirJson;
}

async function call(
  epic: FakeEpic,
  token: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; form?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    Accept: 'application/fhir+json',
    Authorization: `Bearer ${token}`,
  };
  let body: string | undefined;
  if (options.form !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = options.form;
  } else if (options.body !== undefined) {
    headers['Content-Type'] = 'application/fhir+json';
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const res = await fetch(path.startsWith('http') ? path : `${epic.fhirBase}${path ? `/${path}` : ''}`, {
    method,
    headers: { ...headers, ...options.headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: (text ? JSON.parse(text) : {}) as FhirJson };
}

describe('fake Epic: FHIR writes, versions and URLs', () => {
  let epic: FakeEpic;
  let token: string;

  async function start(options: FakeEpicOptions = {}): Promise<void> {
    epic = await startFakeEpic(options);
    token = String((await obtainTokens(epic, epic.registerClient({ scopes: WRITE_SCOPES }))).access_token);
  }
  afterEach(() => epic.close());

  const newPatient = {
    resourceType: 'Patient',
    name: [{ family: 'Okafor', given: ['Ada'] }],
    gender: 'female',
  };

  it('creates with 201, an absolute Location with the version, ETag and Last-Modified', async () => {
    await start();
    const res = await call(epic, token, 'POST', 'Patient', { body: newPatient });
    expect(res.status).toBe(201);
    const id = String(res.body.id);
    expect(res.headers.get('location')).toBe(`${epic.fhirBase}/Patient/${id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified')!).getTime()).toBeGreaterThan(Date.now() - 5000);
    expect(res.body).toMatchObject({ ...newPatient, id, meta: { versionId: '1' } });
    expect((await call(epic, token, 'GET', `Patient/${id}`)).body.name).toEqual(newPatient.name);
  });

  it('answers Prefer: return=minimal without a body, return=OperationOutcome with one', async () => {
    await start();
    const minimal = await call(epic, token, 'POST', 'Patient', {
      body: newPatient,
      headers: { Prefer: 'return=minimal' },
    });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    const outcome = await call(epic, token, 'POST', 'Patient', {
      body: newPatient,
      headers: { Prefer: 'return=OperationOutcome' },
    });
    expect(outcome.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses a write without a write scope (403 insufficient_scope), a bad body (400) and another media type (415)', async () => {
    await start();
    const reader = String((await obtainTokens(epic, epic.registerClient())).access_token);
    const refused = await call(epic, reader, 'POST', 'Patient', { body: newPatient });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toMatch(/insufficient_scope/);
    expect(
      (await call(epic, token, 'POST', 'Patient', { body: { resourceType: 'Observation' } })).status,
    ).toBe(400);
    expect((await call(epic, token, 'POST', 'Patient', { body: '{not json' })).status).toBe(400);
    const xml = await call(epic, token, 'POST', 'Patient', {
      body: '<Patient/>',
      headers: { 'Content-Type': 'application/fhir+xml' },
    });
    expect(xml.status).toBe(415);
  });

  it('conditional create: one match is returned as is, none creates', async () => {
    await start();
    const found = await call(epic, token, 'POST', 'Patient', {
      body: newPatient,
      headers: { 'If-None-Exist': 'identifier=203711' },
    });
    expect(found.status).toBe(200);
    expect(found.body.id).toBe(SEED.camila);
    const created = await call(epic, token, 'POST', 'Patient', {
      body: newPatient,
      headers: { 'If-None-Exist': 'identifier=does-not-exist' },
    });
    expect(created.status).toBe(201);
  });

  it('updates with a new version; If-Match with an old one is 412; vread reads each version', async () => {
    await start();
    const created = await call(epic, token, 'POST', 'Patient', { body: newPatient });
    const id = String(created.body.id);
    const updated = await call(epic, token, 'PUT', `Patient/${id}`, {
      body: { ...newPatient, id, gender: 'other' },
      headers: { 'If-Match': 'W/"1"' },
    });
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).toBe('W/"2"');
    expect(updated.headers.get('content-location')).toBe(`${epic.fhirBase}/Patient/${id}/_history/2`);
    const stale = await call(epic, token, 'PUT', `Patient/${id}`, {
      body: { ...newPatient, id },
      headers: { 'If-Match': 'W/"1"' },
    });
    expect(stale.status).toBe(412);
    expect((await call(epic, token, 'GET', `Patient/${id}/_history/1`)).body.gender).toBe('female');
    expect((await call(epic, token, 'GET', `Patient/${id}/_history/2`)).body.gender).toBe('other');
    expect((await call(epic, token, 'GET', `Patient/${id}/_history/9`)).status).toBe(404);
    expect(
      (await call(epic, token, 'PUT', `Patient/${id}`, { body: { ...newPatient, id: 'other' } })).status,
    ).toBe(400);
  });

  it('patches with JSON Patch, honouring If-Match', async () => {
    await start();
    const id = String((await call(epic, token, 'POST', 'Patient', { body: newPatient })).body.id);
    const patch = [{ op: 'replace', path: '/gender', value: 'male' }];
    const res = await fetch(`${epic.fhirBase}/Patient/${id}`, {
      method: 'PATCH',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json-patch+json',
        'If-Match': 'W/"1"',
      },
      body: JSON.stringify(patch),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { gender: string }).gender).toBe('male');
    const again = await fetch(`${epic.fhirBase}/Patient/${id}`, {
      method: 'PATCH',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json-patch+json',
        'If-Match': 'W/"1"',
      },
      body: JSON.stringify(patch),
    });
    expect(again.status).toBe(412);
  });

  it('deletes with 204; a read then answers 410 and the history shows the deletion', async () => {
    await start();
    const id = String((await call(epic, token, 'POST', 'Patient', { body: newPatient })).body.id);
    expect((await call(epic, token, 'DELETE', `Patient/${id}`)).status).toBe(204);
    expect((await call(epic, token, 'GET', `Patient/${id}`)).status).toBe(410);
    const history = await call(epic, token, 'GET', `Patient/${id}/_history`);
    expect(history.body).toMatchObject({ resourceType: 'Bundle', type: 'history', total: 2 });
    expect(history.body.entry.map((e) => e.request.method)).toEqual(['DELETE', 'POST']);
    expect(history.body.entry[1].fullUrl).toBe(`${epic.fhirBase}/Patient/${id}`);
  });

  it('conditional read: If-None-Match with the current ETag and If-Modified-Since answer 304', async () => {
    await start();
    const read = await call(epic, token, 'GET', `Patient/${SEED.camila}`);
    const etag = read.headers.get('etag')!;
    expect(
      (await call(epic, token, 'GET', `Patient/${SEED.camila}`, { headers: { 'If-None-Match': etag } }))
        .status,
    ).toBe(304);
    expect(
      (await call(epic, token, 'GET', `Patient/${SEED.camila}`, { headers: { 'If-None-Match': 'W/"9"' } }))
        .status,
    ).toBe(200);
    const since = read.headers.get('last-modified')!;
    expect(
      (await call(epic, token, 'GET', `Patient/${SEED.camila}`, { headers: { 'If-Modified-Since': since } }))
        .status,
    ).toBe(304);
  });

  it('searches with POST _search and a form body, as with GET', async () => {
    await start();
    const get = await call(epic, token, 'GET', `Observation?patient=${SEED.camila}`);
    const res = await call(epic, token, 'POST', 'Observation/_search', {
      form: `patient=${SEED.camila}&_count=5`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: get.body.total });
    expect(res.body.entry).toHaveLength(5);
    expect(res.body.link.find((l) => l.relation === 'next')!.url).toContain(`${epic.fhirBase}/Observation?`);
  });

  it('switch locationHeader: relative', async () => {
    await start({ locationHeader: 'relative' });
    const res = await call(epic, token, 'POST', 'Patient', { body: newPatient });
    expect(res.headers.get('location')).toBe(`Patient/${String(res.body.id)}/_history/1`);
  });

  it('switch pagingLinks: getpages pages at the base until the end', async () => {
    await start({ pagingLinks: 'getpages' });
    let page = await call(epic, token, 'GET', `Observation?patient=${SEED.camila}&_count=5`);
    const ids: string[] = [];
    for (;;) {
      ids.push(...page.body.entry.map((e) => e.resource.id));
      const next = page.body.link.find((l) => l.relation === 'next')?.url;
      if (!next) break;
      expect(next).toMatch(new RegExp(`^${epic.fhirBase.replace(/[.?]/g, '\\$&')}\\?_getpages=`));
      page = await call(epic, token, 'GET', next);
    }
    expect(new Set(ids).size).toBe(page.body.total);
    expect(ids.length).toBeGreaterThan(10);
  });

  it('switch jsonSlashEscaping writes every / in JSON as \\/', async () => {
    await start({ jsonSlashEscaping: true });
    const res = await call(epic, token, 'GET', `Observation?patient=${SEED.camila}`);
    expect(res.text).toContain(epic.fhirBase.replace(/\//g, '\\/'));
    expect(res.text).not.toContain(epic.fhirBase);
    expect(res.body.link[0].url).toContain(epic.fhirBase);
  });

  it("switch jsonSlashEscaping 'unicode' writes every / in JSON as \\u002F", async () => {
    await start({ jsonSlashEscaping: 'unicode' });
    const res = await call(epic, token, 'GET', `Observation?patient=${SEED.camila}`);
    expect(res.text).toContain(epic.fhirBase.replace(/\//g, '\\u002F'));
    expect(res.text).not.toContain(epic.fhirBase);
    expect(res.body.link[0].url).toContain(epic.fhirBase);
  });

  it('serveLargeSearch streams a generated Bundle of the size asked', async () => {
    await start();
    epic.serveLargeSearch('Observation', { entries: 1000, bytesPerEntry: 1000 });
    const res = await call(epic, token, 'GET', 'Observation');
    expect(res.text.length).toBeGreaterThan(900_000);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', total: 1000 });
    expect(res.body.entry).toHaveLength(1000);
    expect(res.body.entry[999].fullUrl).toBe(`${epic.fhirBase}/Observation/large-999`);
    epic.serveLargeSearch('Observation', undefined);
    expect((await call(epic, token, 'GET', 'Observation')).status).toBe(400); // needs a patient again
  });

  describe('compressAnswers', () => {
    /** A GET as bytes, undecoded: the status, the Content-Encoding and the body. */
    const raw = (url: string, headers: Record<string, string>) =>
      new Promise<{ status: number; coding: string | undefined; body: Buffer }>((resolve, reject) => {
        const req = httpRequest(url, { headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              coding: res.headers['content-encoding'],
              body: Buffer.concat(chunks),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const fhir = (path: string, acceptEncoding?: string) =>
      raw(`${epic.fhirBase}/${path}`, {
        Accept: 'application/fhir+json',
        Authorization: `Bearer ${token}`,
        ...(acceptEncoding === undefined ? {} : { 'Accept-Encoding': acceptEncoding }),
      });

    it('answers in the coding asked for when switched on, plainly otherwise', async () => {
      await start();
      const plain = await fhir(`Patient/${SEED.camila}`, 'gzip, deflate, br');
      expect(plain.coding).toBeUndefined();
      const resource = JSON.parse(plain.body.toString()) as FhirJson;
      expect(resource.id).toBe(SEED.camila);

      const decoders = { gzip: gunzipSync, deflate: inflateSync, br: brotliDecompressSync };
      for (const coding of ['gzip', 'deflate', 'br'] as const) {
        epic.compressAnswers(coding);
        const answer = await fhir(`Patient/${SEED.camila}`, 'gzip, deflate, br');
        expect(answer).toMatchObject({ status: 200, coding });
        expect(JSON.parse(decoders[coding](answer.body).toString())).toEqual(resource);
        // Not asked for (absent, or refused with q=0): not compressed.
        expect((await fhir(`Patient/${SEED.camila}`)).coding).toBeUndefined();
        expect((await fhir(`Patient/${SEED.camila}`, `${coding};q=0, identity`)).coding).toBeUndefined();
      }
      // OAuth and discovery answers stay plain.
      const discovery = await raw(epic.smartConfigurationUrl, { 'Accept-Encoding': 'br' });
      expect(discovery.coding).toBeUndefined();
    });

    it('compresses a streamed Bundle as it goes', async () => {
      await start();
      epic.compressAnswers('gzip');
      epic.serveLargeSearch('Observation', { entries: 500, bytesPerEntry: 1000 });
      const answer = await fhir('Observation', 'gzip');
      expect(answer.coding).toBe('gzip');
      expect(answer.body.length).toBeLessThan(100_000);
      const bundle = JSON.parse(gunzipSync(answer.body).toString()) as FhirJson;
      expect(bundle.entry).toHaveLength(500);
    });
  });
});
