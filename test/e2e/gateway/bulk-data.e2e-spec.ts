import { randomUUID } from 'node:crypto';

import { registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { BULK_FILES_PATH, FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { MB, occurrences, streamAndMeasure } from 'test/setup/stream-measure';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { createApiKey, issueOf } from './gateway-harness';

/** PUBLIC_BASE_URL in tests: the gateway base in rewritten URLs. */
const PUBLIC = 'http://localhost:3000';

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

/**
 * FHIR Bulk Data through the gateway (https://hl7.org/fhir/uv/bulkdata/export.html) for a
 * backend-service organization: the kick-off's Content-Location, the polls and the manifest's file
 * URLs point at the gateway; files stream through it with the organization's token.
 */
describe('FHIR gateway: Bulk Data ($export)', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let appUrl: string;
  let org: { orgId: string; admin: SignedIn; clientId: string; base: string };
  let key: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      // The large download below runs full GCs between its samples (streamAndMeasure), which on a
      // busy machine (the whole suite, a large heap) can hold the event loop for a while: its
      // request must not time out in the throttle's queue (2 s by default; the throttle has tests
      // of its own).
      createTestApp({ env: { GATEWAY_QUEUE_WAIT_MS: '30000' } }),
      startFakeEpic(),
    ]);
    appUrl = await listenOnLoopback(t);
    const registered = await registeredOrganization(t, epic, {
      jwksUrl: `${appUrl}/.well-known/jwks-sandbox.json`,
      backend: {},
      scopes: 'system/Patient.read system/Observation.read system/Encounter.read',
    });
    // A backend organization connects by client_credentials, nobody signing in at Epic.
    await registered.admin.agent
      .post(`/connect_epic/${registered.orgId}`)
      .type('form')
      .send({ _csrf: registered.admin.csrf })
      .expect(303);
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [registered.orgId],
    );
    org = { ...registered, base: `/gateway/${slug}/fhir` };
    key = (await createApiKey(org)).secret; // a read key
    epic.addResource({
      resourceType: 'Group',
      id: 'bulk-cohort',
      type: 'person',
      actual: true,
      member: [{ entity: { reference: `Patient/${SEED.camila}` } }],
    });
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.bulkData());

  /** A gateway URL the gateway wrote (under PUBLIC_BASE_URL), as a path on the test app. */
  function gatewayPath(url: string | undefined): string {
    expect(url?.startsWith(`${PUBLIC}${org.base}/`)).toBe(true);
    return url!.slice(PUBLIC.length);
  }

  const kickOff = (path: string, bearer = key) =>
    t
      .http()
      .get(`${org.base}/${path}`)
      .set('Authorization', `Bearer ${bearer}`)
      .set('Accept', 'application/fhir+json')
      .set('Prefer', 'respond-async');
  const call = (method: 'get' | 'delete', path: string, bearer = key) =>
    t.http()[method](path).set('Authorization', `Bearer ${bearer}`);

  /** The token the fake saw on its last FHIR request: the organization's, never the caller's key. */
  function lastTokenAtFake(): string {
    const entry = epic.requests('fhir').at(-1)!;
    const token = /^Bearer (.+)$/.exec(String(entry.headers.authorization))?.[1];
    expect(token).toBeDefined();
    expect(epic.inspectToken(token!)).toMatchObject({ kind: 'access', clientId: org.clientId });
    return token!;
  }

  it('kicks off, polls and downloads through the gateway, every URL rewritten', async () => {
    epic.clearLog();
    const start = await kickOff('Patient/$export?_type=Patient,Observation').expect(202);
    const status = gatewayPath(start.headers['content-location']);
    expect(status).toMatch(new RegExp(`^${org.base}/BulkRequest/[0-9a-f-]{36}$`));
    expect(epic.requests('fhir').at(-1)!.headers.prefer).toBe('respond-async');
    lastTokenAtFake();

    // In progress: 202 with the server's X-Progress and Retry-After, twice (the fake's default).
    for (const n of [1, 2]) {
      const poll = await call('get', status).expect(202);
      expect(poll.headers['retry-after']).toBe('1');
      expect(poll.headers['x-progress']).toBe(`Processing (${n} of 2)`);
    }
    const done = await call('get', status).expect(200);
    expect(done.text).not.toContain(new URL(epic.fhirBase).host);
    const manifest = JSON.parse(done.text) as Manifest;
    expect(manifest).toMatchObject({
      request: `${PUBLIC}${org.base}/Patient/$export?_type=Patient,Observation`,
      requiresAccessToken: true,
      error: [],
    });
    expect(manifest.output.map((file) => file.type)).toEqual(['Patient', 'Observation']);

    for (const output of manifest.output) {
      const path = gatewayPath(output.url);
      expect(path.startsWith(`${status}/`)).toBe(true);
      const file = await call('get', path).buffer(true).expect(200);
      expect(file.headers['content-type']).toBe('application/fhir+ndjson');
      const lines = String(file.body instanceof Buffer ? file.body.toString('utf8') : file.text)
        .trim()
        .split('\n');
      expect(lines).toHaveLength(output.count);
      for (const line of lines) {
        expect((JSON.parse(line) as { resourceType: string }).resourceType).toBe(output.type);
      }
      lastTokenAtFake();
    }
    // The caller's API key never reached the fake.
    for (const entry of epic.requests()) expect(JSON.stringify(entry.headers)).not.toContain(key);
  });

  it('exports a Group and cancels it with DELETE through the gateway (a read key may)', async () => {
    const start = await kickOff('Group/bulk-cohort/$export?_type=Observation').expect(202);
    const status = gatewayPath(start.headers['content-location']);
    const jobId = status.split('/').at(-1)!;
    expect(epic.bulkJobs()).toContain(jobId);
    await call('delete', status).expect(202);
    expect(epic.bulkJobs()).not.toContain(jobId);
    expect(epic.requests('fhir').at(-1)).toMatchObject({ method: 'DELETE' });
    lastTokenAtFake();
    // The server's own answer for a cancelled job passes through.
    const gone = await call('get', status).expect(404);
    expect(issueOf(gone.body).code).toBe('not-found');
  });

  it('lets a key with a type allow-list export only those types, and never without _type', async () => {
    const limited = (await createApiKey(org, { resourceTypes: ['Patient', 'Observation'] })).secret;
    const before = epic.calls('fhir');
    for (const path of [
      'Patient/$export?_type=Patient,Encounter',
      'Group/bulk-cohort/$export?_type=Encounter',
      'Patient/$export?_type=Patient&_typeFilter=Encounter%3Fstatus%3Dfinished',
      'Patient/$export',
    ]) {
      const refused = await kickOff(path, limited).expect(403);
      expect(issueOf(refused.body).code).toBe('forbidden');
    }
    // A kick-off by POST (its _type in a Parameters body) needs read_write, and any type.
    await t
      .http()
      .post(`${org.base}/Patient/$export?_type=Patient`)
      .set('Authorization', `Bearer ${limited}`)
      .set('Prefer', 'respond-async')
      .set('Content-Type', 'application/fhir+json')
      .send(JSON.stringify({ resourceType: 'Parameters' }))
      .expect(403);
    expect(epic.calls('fhir')).toBe(before); // nothing was sent

    epic.bulkData({ pollsBeforeDone: 0 });
    const start = await kickOff('Patient/$export?_type=Observation', limited).expect(202);
    const status = gatewayPath(start.headers['content-location']);
    const manifest = (await call('get', status, limited).expect(200)).body as Manifest;
    await call('get', gatewayPath(manifest.output[0].url), limited).expect(200);
    await call('delete', status, limited).expect(202);
  });

  it('binds a job to the key that kicked it off: another key of the organization gets 404 for its URLs', async () => {
    epic.bulkData({ pollsBeforeDone: 0 });
    const other = (await createApiKey(org)).secret; // a read key of the same organization
    const start = await kickOff('Patient/$export?_type=Patient').expect(202);
    const status = gatewayPath(start.headers['content-location']);
    const jobId = status.split('/').at(-1)!;
    const manifest = (await call('get', status).expect(200)).body as Manifest;
    const file = gatewayPath(manifest.output[0].url);

    const before = epic.calls('fhir');
    for (const [method, path] of [
      ['get', status],
      ['get', file],
      ['delete', status],
    ] as const) {
      const refused = await call(method, path, other).expect(404);
      expect(issueOf(refused.body)).toMatchObject({
        code: 'not-found',
        diagnostics: expect.stringContaining('another API key'),
      });
    }
    expect(epic.calls('fhir')).toBe(before); // refused without asking the server
    expect(epic.bulkJobs()).toContain(jobId); // the other key could not cancel it

    // The key that started it still may.
    await call('get', file).expect(200);
    await call('delete', status).expect(202);
  });

  it('lets each key that kicked off a job the server reused use it (HAPI FHIR hands out an identical export again)', async () => {
    epic.bulkData({ pollsBeforeDone: 0 });
    const second = (await createApiKey(org)).secret;
    const start = await kickOff('Patient/$export?_type=Patient').expect(202);
    const status = gatewayPath(start.headers['content-location']);
    const upstream = `${epic.fhirBase}${status.slice(org.base.length)}`;
    // The server answers the second key's identical kick-off with the job under way.
    epic.failNext('fhir', { status: 202, body: '', headers: { 'Content-Location': upstream } });
    const again = await kickOff('Patient/$export?_type=Patient', second).expect(202);
    expect(gatewayPath(again.headers['content-location'])).toBe(status);
    await call('get', status, second).expect(200);
    await call('get', status).expect(200); // the first key keeps its job
  });

  it("binds a job whose status URL ends in '/'", async () => {
    epic.bulkData({ pollsBeforeDone: 0 });
    const other = (await createApiKey(org)).secret;
    const start = await kickOff('Patient/$export?_type=Patient', other).expect(202);
    const upstream = `${epic.fhirBase}${gatewayPath(start.headers['content-location']).slice(org.base.length)}/`;
    epic.failNext('fhir', { status: 202, body: '', headers: { 'Content-Location': upstream } });
    const slashed = await kickOff('Patient/$export?_type=Patient').expect(202);
    const status = gatewayPath(slashed.headers['content-location']);
    expect(status).toMatch(/\/$/);
    await call('get', status).expect(200);
  });

  it('answers 502 saying the export started when the job cannot be recorded', async () => {
    epic.bulkData({ pollsBeforeDone: 0 });
    const jobs = epic.bulkJobs().length;
    // A real database failure on the insert (no mock): a trigger that refuses it.
    await t.dataSource.query(`
      CREATE FUNCTION refuse_bulk_job() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
      CREATE TRIGGER refuse_bulk_job BEFORE INSERT ON gateway_bulk_job
        FOR EACH ROW EXECUTE FUNCTION refuse_bulk_job();`);
    try {
      const res = await kickOff('Patient/$export?_type=Patient').expect(502);
      expect(issueOf(res.body)).toMatchObject({
        code: 'exception',
        diagnostics: expect.stringContaining(
          'started the Bulk Data export, but the gateway could not record it',
        ),
      });
      expect(res.headers['content-location']).toBeUndefined();
      expect(epic.bulkJobs().length).toBe(jobs + 1); // the export runs on at the server
    } finally {
      await t.dataSource.query(
        'DROP TRIGGER refuse_bulk_job ON gateway_bulk_job; DROP FUNCTION refuse_bulk_job();',
      );
    }
  });

  it('answers a job URL the gateway never handed out with 404, without asking the server', async () => {
    const before = epic.calls('fhir');
    for (const path of [
      `BulkRequest/${randomUUID()}`,
      `BulkRequest/${randomUUID()}/Patient-1.ndjson`,
      '$export-poll-status?_jobId=123',
      '$export-poll-status',
    ]) {
      const res = await call('get', `${org.base}/${path}`).expect(404);
      expect(issueOf(res.body).code).toBe('not-found');
    }
    expect(epic.calls('fhir')).toBe(before);
  });

  it('sends a kick-off once: after a 5xx or a network failure, no retry (it could start a second job)', async () => {
    const jobs = epic.bulkJobs().length;
    let before = epic.calls('fhir');
    epic.failNext('fhir', { status: 503, retryAfter: null });
    await kickOff('Patient/$export?_type=Patient').expect(503); // the server's own answer
    expect(epic.calls('fhir') - before).toBe(1);

    before = epic.calls('fhir');
    epic.failNext('fhir', { drop: true });
    const dropped = await kickOff('Patient/$export?_type=Patient').expect(502);
    expect(issueOf(dropped.body).code).toBe('transient');
    expect(epic.calls('fhir') - before).toBe(1);
    expect(epic.bulkJobs().length).toBe(jobs);

    // Polls are reads, retried as any read.
    epic.bulkData({ pollsBeforeDone: 0 });
    const start = await kickOff('Patient/$export?_type=Patient').expect(202);
    before = epic.calls('fhir');
    epic.failNext('fhir', { status: 503, retryAfter: null });
    await call('get', gatewayPath(start.headers['content-location'])).expect(200);
    expect(epic.calls('fhir') - before).toBe(2);
  });

  it("leaves file URLs outside the server's FHIR base as they are: the gateway never fetches them", async () => {
    epic.bulkData({ pollsBeforeDone: 0, files: 'elsewhere' });
    const start = await kickOff('Patient/$export?_type=Patient').expect(202);
    const manifest = JSON.parse(
      (await call('get', gatewayPath(start.headers['content-location'])).expect(200)).text,
    ) as Manifest;
    const [output] = manifest.output;
    // Not under the base: not rewritten, so not a gateway URL (the gateway serves FHIR paths only).
    expect(output.url.startsWith(`${new URL(epic.fhirBase).origin}${BULK_FILES_PATH}/`)).toBe(true);
    expect(manifest.requiresAccessToken).toBe(true);
    // The caller has no token the file server takes: its API key is refused there…
    const direct = await fetch(output.url, { headers: { Authorization: `Bearer ${key}` } });
    expect(direct.status).toBe(401);
    // …and the organization's token was never sent there.
    expect(epic.requests('bulk-files').filter((entry) => entry.status === 200)).toEqual([]);
  });

  it('streams a large NDJSON file without holding it', async () => {
    const lines = 30_000;
    const produced = epic.bulkData({
      pollsBeforeDone: 0,
      largeFile: { type: 'Observation', lines, bytesPerLine: 1000 },
    });
    const start = await kickOff('Patient/$export?_type=Observation').expect(202);
    const manifest = (await call('get', gatewayPath(start.headers['content-location'])).expect(200))
      .body as Manifest;
    const path = gatewayPath(manifest.output[0].url);
    const upstream = Buffer.from(new URL(epic.fhirBase).host);
    const leaks = occurrences(upstream);
    let newlines = 0;
    const run = await streamAndMeasure({
      url: `${appUrl}${path}`,
      headers: { Authorization: `Bearer ${key}` },
      produced,
      onChunk: (chunk) => {
        for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) newlines++;
        leaks.feed(chunk);
      },
    });
    expect(run.status).toBe(200);
    expect(newlines).toBe(lines);
    expect(run.received).toBeGreaterThan(29_000_000); // lines of ~1000 bytes, URLs rewritten
    expect(leaks.count).toBe(0); // every reference under the base rewritten
    // A few pieces in sockets and the pipeline; a buffered file would be 30 MB.
    expect(run.peakInFlight / MB).toBeLessThan(16);
    expect(run.rssGrowth / MB).toBeLessThan(30);
  }, 90_000);
});
