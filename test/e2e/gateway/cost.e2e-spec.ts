import { readFileSync } from 'node:fs';

import { Client } from 'pg';

import { createApiKey } from 'test/factories/api-keys';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { MB, occurrences, streamAndMeasure } from 'test/setup/stream-measure';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { gatewayOrganization, GatewayOrganization } from './gateway-harness';

/**
 * What a gateway request costs: no session lookup (AuthModule's middleware skips /gateway/), a few
 * indexed queries, and memory that does not grow with the answer (a 30 MB Bundle streams through).
 */
describe('FHIR gateway: what a request costs', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let key: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    org = await gatewayOrganization(t, epic);
    key = (await createApiKey(org)).secret;
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  /** The SQL statements the app sends while `work` runs. */
  async function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    const prototype = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = prototype.query;
    prototype.query = function (this: unknown, ...args: unknown[]) {
      const first = args[0] as string | { text?: string } | undefined;
      seen.push(typeof first === 'string' ? first : String(first?.text));
      return original.apply(this, args);
    };
    try {
      await work();
    } finally {
      prototype.query = original;
    }
    return seen;
  }

  it('looks up no session, even when the caller sends a session cookie', async () => {
    // The same browser, signed in: an ordinary route reads its session…
    const page = await statementsDuring(() =>
      org.admin.agent.get(`/api/organizations/${org.orgId}`).expect(200),
    );
    expect(page.some((sql) => sql.includes('user_session'))).toBe(true);
    // …the gateway does not, and sets no cookie.
    const gateway = await statementsDuring(async () => {
      for (let i = 0; i < 5; i++) {
        const res = await org.admin.agent
          .get(`${org.base}/Patient/${SEED.camila}`)
          .set('Authorization', `Bearer ${key}`)
          .expect(200);
        expect(res.headers['set-cookie']).toBeUndefined();
      }
    });
    expect(gateway.filter((sql) => sql.includes('user_session'))).toEqual([]);
    // The key and the organization of the slug are remembered: warm requests look up neither.
    expect(gateway.filter((sql) => /FROM "?organization"?\b/i.test(sql)).length).toBeLessThanOrEqual(1);
    expect(gateway.length / 5).toBeLessThanOrEqual(4);
  });

  /** The request log's lines (pino-http's, with `req`) for paths under `prefix`. */
  function requestLogLines(prefix: string): { req: { url: string }; res: { statusCode: number } }[] {
    return readFileSync(process.env.LOG_FILE!, 'utf8')
      .split('\n')
      .filter((line) => line.includes(prefix))
      .map((line) => JSON.parse(line) as { req?: { url: string }; res: { statusCode: number } })
      .filter((entry): entry is { req: { url: string }; res: { statusCode: number } } =>
        Boolean(entry.req?.url.startsWith(prefix)),
      );
  }

  it('writes no log line per request by default (access records and metrics keep them)', async () => {
    const res = await t
      .http()
      .get(`${org.base}/Patient/${SEED.camila}`)
      .set('Authorization', `Bearer ${key}`)
      .set('X-Request-Id', 'gw-cost-no-line')
      .expect(200);
    // No request id either: nothing ties the answer to a log line.
    expect(res.headers['x-request-id']).toBeUndefined();
    expect(readFileSync(process.env.LOG_FILE!, 'utf8')).not.toContain('gw-cost-no-line');
    await org.admin.agent.get(`/api/organizations/${org.orgId}`).expect(200);
    expect(requestLogLines(org.base)).toEqual([]);
    // Other routes keep theirs.
    expect(requestLogLines(`/api/organizations/${org.orgId}`).length).toBeGreaterThan(0);

    // With GATEWAY_REQUEST_LOG: entry.e2e-spec.ts.
  });

  it('needs no CSRF token or same-origin request for a write', async () => {
    const writer = (await createApiKey(org, { access: 'read_write' })).secret;
    await t
      .http()
      .post(`${org.base}/Patient`)
      .set('Authorization', `Bearer ${writer}`)
      .set('Origin', 'https://elsewhere.example')
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Content-Type', 'application/fhir+json')
      .send(JSON.stringify({ resourceType: 'Patient' }))
      .expect(201);
  });

  // 30 MB here (twice what a buffering pipeline could hide under the bound); the 50 MB figure is
  // the bench's (npm run bench -- gateway), which also times it.
  it('streams a 30 MB Bundle through, rewriting its URLs, never holding more than a few MB of it', async () => {
    const entries = 30_000;
    const produced = epic.serveLargeSearch('Observation', { entries, bytesPerEntry: 1000 });
    const appUrl = await listenOnLoopback(t);
    const fullUrl = occurrences(
      Buffer.from(`"fullUrl":"http://localhost:3000${org.base}/Observation/large-`),
    );
    const leaks = occurrences(Buffer.from(new URL(epic.fhirBase).host));
    try {
      const run = await streamAndMeasure({
        url: `${appUrl}${org.base}/Observation`,
        headers: { Authorization: `Bearer ${key}`, Accept: 'application/fhir+json' },
        produced,
        onChunk: (chunk) => {
          fullUrl.feed(chunk);
          leaks.feed(chunk);
        },
      });
      expect(run.status).toBe(200);
      expect(run.received).toBeGreaterThan(30_000_000);
      expect(fullUrl.count).toBe(entries);
      expect(leaks.count).toBe(0);
      // Socket buffers on both hops and a few pieces in the pipeline; a buffered Bundle would be 30 MB.
      expect(run.peakInFlight / MB).toBeLessThan(16);
      // Generous: the fake, the app and this reader share the process.
      expect(run.rssGrowth / MB).toBeLessThan(30);
    } finally {
      epic.serveLargeSearch('Observation', undefined);
    }
  }, 120_000);
});
