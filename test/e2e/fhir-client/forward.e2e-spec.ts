import { text } from 'node:stream/consumers';

import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, connectionRow } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * FhirClientService.forward: a caller's request sent as it came through the same interceptors as
 * every FHIR call (token, refresh, replay after a 401, retries, lastSync and lastError), the
 * server's answer returned as a stream whatever its status.
 */
describe('FhirClient: forward', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;
  let orgId: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp({ env: { FHIR_RETRY_ATTEMPTS: '1' } }), startFakeEpic()]);
    fhir = t.app.get(FhirClientService);
    ({ orgId } = await connectedOrganization(t, epic));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  it('streams the answer with the FHIR headers only, and the FHIR base it went to', async () => {
    const answer = await fhir.forward(
      { organizationId: orgId },
      {
        method: 'GET',
        path: `Patient/${SEED.camila}`,
        headers: {
          accept: 'application/fhir+json',
          authorization: 'Bearer caller',
          cookie: 'a=b',
          'x-other': '1',
        },
      },
    );
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.headers).sort()).toEqual(['content-type', 'etag', 'last-modified']);
    expect(answer.fhirBaseUrl).toBe(epic.fhirBase);
    expect(JSON.parse(await text(answer.stream))).toMatchObject({ id: SEED.camila });
    const sent = epic.requests('fhir').at(-1)!.headers;
    expect(sent.authorization).not.toBe('Bearer caller');
    expect(sent.cookie).toBeUndefined();
    expect(sent['x-other']).toBeUndefined();
  });

  it("returns the server's 4xx as an answer, and counts it as a working connection", async () => {
    await t.dataSource.query(
      'UPDATE organization_connection SET last_sync = NULL WHERE organization_id = $1',
      [orgId],
    );
    const answer = await fhir.forward({ organizationId: orgId }, { method: 'GET', path: 'Patient/nope' });
    expect(answer.status).toBe(404);
    expect(JSON.parse(await text(answer.stream))).toMatchObject({ resourceType: 'OperationOutcome' });
    expect((await connectionRow(t, orgId)).lastSync).not.toBeNull();
  });

  it("returns a plain write's 5xx as the answer, sent once, and records the error", async () => {
    const before = epic.calls('fhir');
    epic.failNext('fhir', { status: 500 });
    const answer = await fhir.forward(
      { organizationId: orgId },
      {
        method: 'POST',
        path: 'Patient',
        headers: { 'content-type': 'application/fhir+json' },
        body: Buffer.from('{"resourceType":"Patient"}'),
      },
    );
    expect(answer.status).toBe(500);
    answer.stream.destroy();
    expect(epic.calls('fhir') - before).toBe(1);
    expect((await connectionRow(t, orgId)).lastError).toContain('HTTP 500');
  });

  it('throws when retries of a GET run out, with the server status', async () => {
    epic.failNext('fhir', { status: 502 }, 2);
    const error = await fhir
      .forward({ organizationId: orgId }, { method: 'GET', path: `Patient/${SEED.camila}` })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FhirClientError);
    expect(error).toMatchObject({ kind: FhirErrorKind.Unavailable, status: 502 });
  });

  it("keeps a network failure's cause plain: name, message and code, never the request or its token", async () => {
    const token = (epic.requests('token').at(-1)?.responseBody as { access_token: string }).access_token;
    // Through the forwarder (node:http) and through FhirClient's reads (axios, whose errors hold
    // the request's config with its Authorization header).
    const calls = [
      () => fhir.forward({ organizationId: orgId }, { method: 'GET', path: `Patient/${SEED.camila}` }),
      () => fhir.forOrganization(orgId).read('Patient', SEED.camila),
    ];
    for (const call of calls) {
      epic.failNext('fhir', { drop: true }, 2);
      const error = (await call().catch((e: unknown) => e)) as FhirClientError;
      expect(error).toMatchObject({ kind: FhirErrorKind.Unavailable, network: 'unreachable' });
      const cause = error.cause as Error & Record<string, unknown>;
      expect(cause).toBeInstanceOf(Error);
      expect(cause.code).toBe('ECONNRESET');
      expect(Object.keys(cause).sort()).toEqual(['code', 'name', 'status']);
      expect(JSON.stringify({ ...cause, message: cause.message, stack: cause.stack })).not.toContain(token);
    }
  });

  it('refuses a path that could leave the FHIR base, before any call', async () => {
    const before = epic.calls('fhir');
    for (const path of ['../oauth2/token', 'Patient/%2e%2e', 'https://elsewhere.example/x', '/Patient']) {
      await expect(fhir.forward({ organizationId: orgId }, { method: 'GET', path })).rejects.toMatchObject({
        kind: FhirErrorKind.Request,
      });
    }
    expect(epic.calls('fhir')).toBe(before);
  });
});
