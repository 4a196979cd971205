import { request as httpRequest } from 'node:http';

import { CredentialCache } from 'src/fhir-client/credential-cache';
import { GatewayTrafficService } from 'src/gateway/traffic/gateway-traffic.service';

import { connectionRow, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization, issueOf } from './gateway-harness';

const MINUTE = 60_000;

/**
 * What the gateway answers when it cannot give the FHIR server's answer, always as an
 * OperationOutcome: the connection's state (503), a server that cannot be reached (502) or does not
 * answer in time (504), a Retry-After longer than it will hold a caller (503 at once), an oversized
 * body (413); and when it retries: idempotent requests only, after a 401 any request once.
 */
describe('FHIR gateway: errors, retries and the connection', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({
        env: {
          FHIR_RETRY_ATTEMPTS: '2',
          EPIC_HTTP_TIMEOUT_MS: '1000',
          GATEWAY_RETRY_AFTER_CAP_SECONDS: '2',
          GATEWAY_MAX_REQUEST_BYTES: '4096',
          GATEWAY_UPSTREAM_IDLE_MS: '400',
        },
      }),
      startFakeEpic(),
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  /** A fresh connected organization and a read_write key for it. */
  async function connected(): Promise<{ org: GatewayOrganization; key: string }> {
    const org = await gatewayOrganization(t, epic);
    return { org, key: (await createApiKey(org, { access: 'read_write' })).secret };
  }
  const get = (org: GatewayOrganization, key: string, path: string) =>
    t.http().get(`${org.base}${path}`).set('Authorization', `Bearer ${key}`);
  const send = (
    method: 'post' | 'put',
    org: GatewayOrganization,
    key: string,
    path: string,
    body: unknown,
  ) => {
    const url = `${org.base}${path}`;
    return (method === 'post' ? t.http().post(url) : t.http().put(url))
      .set('Authorization', `Bearer ${key}`)
      .set('Content-Type', 'application/fhir+json')
      .send(JSON.stringify(body));
  };
  const callsSince = (before: number) => epic.calls('fhir') - before;

  describe("the connection's state: 503 with the state in words", () => {
    it('not connected', async () => {
      const org = await gatewayOrganization(t, epic, { connect: false });
      const { secret } = await createApiKey(org);
      const res = await get(org, secret, `/Patient/${SEED.camila}`).expect(503);
      expect(issueOf(res.body)).toMatchObject({ code: 'no-store' });
      expect(issueOf(res.body).diagnostics).toMatch(/^Connection state: Not connected\. .*not connected/);
    });

    it('expired, needs re-authentication (the refresh was refused)', async () => {
      const { org, key } = await connected();
      await setStoredExpiry(t, org.orgId, -MINUTE);
      epic.rejectRefresh();
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(503);
      expect(issueOf(res.body)).toMatchObject({ code: 'expired' });
      expect(issueOf(res.body).diagnostics).toMatch(/^Connection state: Expired, needs re-authentication\./);
      // The admin sees it through the connection's state, as for any other call.
      expect(await connectionRow(t, org.orgId)).toMatchObject({ isConnected: false });
    });

    it('in error (the refresh fails transiently and the token has ended)', async () => {
      const { org, key } = await connected();
      await setStoredExpiry(t, org.orgId, -MINUTE);
      epic.failNext(
        'token',
        { status: 503, retryAfter: null },
        { count: Infinity, grantType: 'refresh_token' },
      );
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(503);
      expect(issueOf(res.body)).toMatchObject({ code: 'transient' });
      expect(issueOf(res.body).diagnostics).toMatch(/^Connection state: Error\./);
      expect((await connectionRow(t, org.orgId)).lastError).not.toBeNull();
    });

    it('a 401 even after a refresh: the tokens are dead', async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { status: 401, retryAfter: null }, 2);
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(503);
      expect(issueOf(res.body).code).toBe('expired');
    });
  });

  describe('the FHIR server cannot answer', () => {
    it('unreachable: 502 after the retries, and the connection records the error until a success', async () => {
      const { org, key } = await connected();
      const before = epic.calls('fhir');
      epic.failNext('fhir', { drop: true }, 3);
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(502);
      expect(issueOf(res.body)).toMatchObject({
        code: 'transient',
        diagnostics: expect.stringContaining('could not be reached'),
      });
      expect(callsSince(before)).toBe(3);
      expect((await connectionRow(t, org.orgId)).lastError).toContain('could not be reached');
      await get(org, key, `/Patient/${SEED.camila}`).expect(200);
      expect((await connectionRow(t, org.orgId)).lastError).toBeNull();
    });

    it('no answer and no network failure (TLS refused): 502 at once, not retried, and recorded', async () => {
      const { org, key } = await connected();
      // The server speaks plain HTTP where the base the token was issued for says https: the TLS
      // handshake fails.
      await t.dataSource.query(
        "UPDATE epic_credential SET fhir_base_url = replace(fhir_base_url, 'http://', 'https://') WHERE organization_id = $1",
        [org.orgId],
      );
      // Seen at once rather than after CREDENTIAL_CACHE_MS, as a change this instance made would be.
      t.app.get(CredentialCache, { strict: false }).forget(org.orgId);
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(502);
      expect(issueOf(res.body)).toMatchObject({
        code: 'transient',
        diagnostics: expect.stringContaining('could not be reached'),
      });
      expect(res.text).not.toContain('127.0.0.1');
      // Not retried: one handshake, no attempt counted in the message. What failed is named, and
      // waiting is not what the admin is told to do.
      const { diagnostics } = issueOf(res.body);
      expect(diagnostics).not.toContain('attempts');
      expect(diagnostics).toMatch(/could not be reached \([A-Z][A-Z0-9_]+\): check the FHIR base URL/);
      expect(diagnostics).not.toContain('Try again later');
      expect((await connectionRow(t, org.orgId)).lastError).toContain('check the FHIR base URL');
    });

    /** The access records of an organization, once the batch with them has been written. */
    async function recordedStatuses(orgId: string): Promise<number[]> {
      // Recorded when the gateway's side of the connection has closed, which the caller may see first.
      const traffic = t.app.get(GatewayTrafficService);
      let rows: { status: number }[] = [];
      for (let tries = 0; rows.length === 0 && tries < 20; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await traffic.flush();
        rows = await t.dataSource.query<{ status: number }[]>(
          'SELECT status FROM gateway_access WHERE organization_id = $1',
          [orgId],
        );
      }
      return rows.map((row) => row.status);
    }

    /** A searchset long enough to be streamed (over the 64 KiB the gateway reads ahead). */
    const LONG_SEARCH = { entries: 400, bytesPerEntry: 1000 };

    it('stalled midway through a long answer (after its first 64 KiB went out): cut off after GATEWAY_UPSTREAM_IDLE_MS, recorded as 504', async () => {
      const { org, key } = await connected();
      epic.serveLargeSearch('Observation', LONG_SEARCH);
      try {
        epic.failNext('fhir', { stallBody: true, afterBytes: 200_000 });
        const started = Date.now();
        // Without the idle limit the caller would wait for its own timeout (here 8 s).
        // Cut off: no HTTP error status (a whole 504 would have one), the connection broken mid-body.
        const outcome = await get(org, key, '/Observation')
          .timeout(8000)
          .then(
            () => 'complete',
            (error: Error & { timeout?: number; status?: number }) =>
              error.timeout
                ? 'caller timed out'
                : error.status !== undefined
                  ? `HTTP ${error.status}`
                  : 'cut off',
          );
        expect(outcome).toBe('cut off');
        expect(Date.now() - started).toBeLessThan(3000);
        expect(await recordedStatuses(org.orgId)).toEqual([504]);
      } finally {
        epic.serveLargeSearch('Observation', undefined);
      }
      // The next call works: nothing of the stalled one is left behind.
      await get(org, key, `/Patient/${SEED.camila}`).expect(200);
    });

    it('stalled midway through a short answer (half of it sent, then silence): a whole 504 OperationOutcome, nothing of it passed on', async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { stallBody: true });
      const res = await get(org, key, `/Observation?patient=${SEED.camila}`).timeout(8000).expect(504);
      expect(issueOf(res.body)).toMatchObject({
        code: 'timeout',
        diagnostics: expect.stringContaining('stopped sending'),
      });
      expect(await recordedStatuses(org.orgId)).toEqual([504]);
    });

    it('stalled before the first byte of the body: a whole 504 OperationOutcome', async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { stallBody: true, afterBytes: 0 });
      const res = await get(org, key, `/Patient/${SEED.camila}`).timeout(8000).expect(504);
      expect(issueOf(res.body)).toMatchObject({
        code: 'timeout',
        diagnostics: expect.stringContaining('stopped sending'),
      });
    });

    it("reset before the first byte of the body: a whole 502 OperationOutcome, the server's failure", async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { stallBody: true, afterBytes: 0, thenReset: true });
      const res = await get(org, key, `/Patient/${SEED.camila}`).timeout(8000).expect(502);
      expect(issueOf(res.body)).toMatchObject({
        code: 'transient',
        details: { coding: [{ code: 'EPIC_UNAVAILABLE' }] },
        diagnostics: expect.stringContaining('connection to the FHIR server broke'),
      });
      await get(org, key, `/Patient/${SEED.camila}`).expect(200);
    });

    it('reset midway through a long answer: the answer is cut', async () => {
      const { org, key } = await connected();
      epic.serveLargeSearch('Observation', LONG_SEARCH);
      try {
        epic.failNext('fhir', { stallBody: true, afterBytes: 200_000, thenReset: true });
        const outcome = await get(org, key, '/Observation')
          .timeout(8000)
          .then(
            () => 'complete',
            (error: Error & { status?: number }) =>
              error.status !== undefined ? `HTTP ${error.status}` : 'cut off',
          );
        expect(outcome).toBe('cut off');
      } finally {
        epic.serveLargeSearch('Observation', undefined);
      }
    });

    it('reset midway through a short answer: a whole 502 OperationOutcome', async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { stallBody: true, thenReset: true });
      const res = await get(org, key, `/Observation?patient=${SEED.camila}`).timeout(8000).expect(502);
      expect(issueOf(res.body)).toMatchObject({
        code: 'transient',
        diagnostics: expect.stringContaining('connection to the FHIR server broke'),
      });
    });

    it('too slow: 504', async () => {
      const { org, key } = await connected();
      epic.failNext('fhir', { delayMs: 1500 }, 3);
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(504);
      expect(issueOf(res.body)).toMatchObject({
        code: 'timeout',
        diagnostics: expect.stringContaining('in time'),
      });
    });
  });

  describe('retries', () => {
    let org: GatewayOrganization;
    let key: string;
    beforeAll(async () => {
      ({ org, key } = await connected());
    });

    it('retries a GET after a 503', async () => {
      const before = epic.calls('fhir');
      epic.failNext('fhir', { status: 503, retryAfter: 0 });
      await get(org, key, `/Patient/${SEED.camila}`).expect(200);
      expect(callsSince(before)).toBe(2);
    });

    it('retries a POST _search (a search changes nothing)', async () => {
      const before = epic.calls('fhir');
      epic.failNext('fhir', { status: 503, retryAfter: 0 });
      await t
        .http()
        .post(`${org.base}/Observation/_search`)
        .set('Authorization', `Bearer ${key}`)
        .type('form')
        .send({ patient: SEED.camila })
        .expect(200);
      expect(callsSince(before)).toBe(2);
    });

    it("never retries a plain write: the server's 503 is the answer", async () => {
      const before = epic.calls('fhir');
      epic.failNext('fhir', { status: 503, retryAfter: 0, body: 'busy', contentType: 'text/plain' });
      const res = await send('post', org, key, '/Patient', { resourceType: 'Patient' }).expect(503);
      expect(res.text).toBe('busy'); // unchanged
      expect(callsSince(before)).toBe(1);
      epic.failNext('fhir', { status: 503, retryAfter: 0 });
      await send('put', org, key, `/Patient/${SEED.derrick}`, {
        resourceType: 'Patient',
        id: SEED.derrick,
      }).expect(503);
      expect(callsSince(before)).toBe(2);
    });

    it('retries a write the caller made conditional: If-Match, If-None-Exist', async () => {
      const created = await send('post', org, key, '/Patient', { resourceType: 'Patient' }).expect(201);
      const id = String((JSON.parse(created.text) as { id: string }).id);
      let before = epic.calls('fhir');
      epic.failNext('fhir', { status: 503, retryAfter: 0 });
      await send('put', org, key, `/Patient/${id}`, { resourceType: 'Patient', id, gender: 'male' })
        .set('If-Match', 'W/"1"')
        .expect(200);
      expect(callsSince(before)).toBe(2);
      before = epic.calls('fhir');
      epic.failNext('fhir', { status: 502 });
      await send('post', org, key, '/Patient', { resourceType: 'Patient' })
        .set('If-None-Exist', 'identifier=203713')
        .expect(200);
      expect(callsSince(before)).toBe(2);
    });

    it('waits for a Retry-After within GATEWAY_RETRY_AFTER_CAP_SECONDS', async () => {
      const before = epic.calls('fhir');
      epic.failNext('fhir', { status: 429, retryAfter: 1 });
      const started = Date.now();
      await get(org, key, `/Patient/${SEED.camila}`).expect(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(callsSince(before)).toBe(2);
    });

    it("slows the whole organization down at once on the server's own 429, not just that request", async () => {
      const busy = await connected();
      const calm = await connected();
      // Past the cap: this request is answered at once, and its organization pauses for 30 s.
      epic.failNext('fhir', { status: 429, retryAfter: 30 });
      await get(busy.org, busy.key, `/Patient/${SEED.camila}`).expect(503);
      const before = epic.calls('fhir');
      const paused = await get(busy.org, busy.key, `/Patient/${SEED.camila}`).expect(429);
      expect(Number(paused.headers['retry-after'])).toBeGreaterThan(20);
      expect(issueOf(paused.body).code).toBe('throttled');
      expect(callsSince(before)).toBe(0); // refused without asking the server
      // Another organization is not slowed down.
      await get(calm.org, calm.key, `/Patient/${SEED.camila}`).expect(200);
    });

    it('answers a longer Retry-After at once: 503 with that Retry-After', async () => {
      const before = epic.calls('fhir');
      epic.failNext('fhir', { status: 503, retryAfter: 30 });
      const started = Date.now();
      const res = await get(org, key, `/Patient/${SEED.camila}`).expect(503);
      expect(Date.now() - started).toBeLessThan(900);
      expect(res.headers['retry-after']).toBe('30');
      expect(issueOf(res.body).code).toBe('transient');
      expect(callsSince(before)).toBe(1);
    });

    it('after a 401, refreshes and sends the request again, a write with its body', async () => {
      epic.expireAccessTokens();
      const refreshes = epic.calls('token', { grantType: 'refresh_token' });
      const before = epic.calls('fhir');
      const res = await send('post', org, key, '/Patient', {
        resourceType: 'Patient',
        gender: 'female',
      }).expect(201);
      expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(refreshes + 1);
      const calls = epic.requests('fhir').slice(before);
      expect(calls.map((c) => c.status)).toEqual([401, 201]);
      const id = String((JSON.parse(res.text) as { id: string }).id);
      expect(epic.resource('Patient', id)).toMatchObject({ gender: 'female' });
    });
  });

  it('refuses a body over GATEWAY_MAX_REQUEST_BYTES with 413, before Epic sees it', async () => {
    const { org, key } = await connected();
    const before = epic.calls('fhir');
    const res = await send('post', org, key, '/Patient', {
      resourceType: 'Patient',
      text: 'x'.repeat(5000),
    }).expect(413);
    expect(issueOf(res.body).code).toBe('too-costly');
    expect(callsSince(before)).toBe(0);
  });

  it('refuses a chunked body (no Content-Length) with 413 as soon as it passes the limit, and the caller gets it', async () => {
    const { org, key } = await connected();
    const appUrl = await listenOnLoopback(t);
    const before = epic.calls('fhir');
    const answer = await new Promise<{ status: number; body: string; connection?: string }>(
      (resolve, reject) => {
        const req = httpRequest(
          `${appUrl}${org.base}/Patient`,
          {
            method: 'POST',
            headers: {
              Authorization: `Bearer ${key}`,
              'Content-Type': 'application/fhir+json',
              'Transfer-Encoding': 'chunked',
            },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection });
              req.destroy();
            });
          },
        );
        req.on('error', reject);
        // 5 KiB, over the 4 KiB limit, and the body not ended: the answer comes before its end.
        for (let i = 0; i < 5; i++) req.write('x'.repeat(1024));
      },
    );
    expect(answer.status).toBe(413);
    expect(issueOf(JSON.parse(answer.body)).code).toBe('too-costly');
    // The rest of the body is never waited for: the connection closes after the answer.
    expect(answer.connection).toBe('close');
    expect(callsSince(before)).toBe(0);
  });
});
