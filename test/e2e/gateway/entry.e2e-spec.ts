import { readFileSync } from 'node:fs';

import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization, issueOf } from './gateway-harness';

/**
 * The gateway's way in (GatewayEntryService): its requests are taken before Express, so none of the
 * pages' machinery runs for them (no session, no helmet page policies), yet each answer carries an
 * API's security headers, the app's rules on input hold, and GATEWAY_REQUEST_LOG gives the request
 * line other routes get. Other URLs under /gateway/ are Express's as before.
 */
describe('FHIR gateway: the way in, before Express', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let key: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp({ env: { GATEWAY_REQUEST_LOG: 'true' } }), startFakeEpic()]);
    org = await gatewayOrganization(t, epic);
    key = (await createApiKey(org)).secret;
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const API_HEADERS = {
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
  /** What helmet and Express add to pages and the JSON API, which the gateway's answers go without. */
  const PAGE_ONLY = [
    'cross-origin-opener-policy',
    'origin-agent-cluster',
    'x-dns-prefetch-control',
    'set-cookie',
  ];

  it("answers with an API's security headers and none of the pages' policies, success or error", async () => {
    const read = await t
      .http()
      .get(`${org.base}/Patient/${SEED.camila}`)
      .set('Authorization', `Bearer ${key}`)
      .expect(200);
    const refused = await t.http().get(`${org.base}/Patient/${SEED.camila}`).expect(401);
    for (const res of [read, refused]) {
      expect(res.headers).toMatchObject(API_HEADERS);
      for (const name of PAGE_ONLY) expect(res.headers[name]).toBeUndefined();
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
    // An ordinary route still gets helmet's.
    const page = await t.http().get('/health/live').expect(200);
    expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
  });

  it('sends a short answer whole with its length (after the URL rewrite), and streams a long one', async () => {
    const short = await t
      .http()
      .get(`${org.base}/Observation?patient=${SEED.camila}`)
      .set('Authorization', `Bearer ${key}`)
      .expect(200);
    expect(short.text).toContain(`"fullUrl":"http://localhost:3000${org.base}/Observation/`);
    // The length of the rewritten body, not of the server's: every byte of the Bundle arrived.
    const bundle = JSON.parse(short.text) as { resourceType: string; entry: unknown[] };
    expect(bundle.resourceType).toBe('Bundle');
    expect(Number(short.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(bundle)));
    expect(short.headers['transfer-encoding']).toBeUndefined();
    epic.serveLargeSearch('Observation', { entries: 400, bytesPerEntry: 1000 });
    try {
      const long = await t
        .http()
        .get(`${org.base}/Observation`)
        .set('Authorization', `Bearer ${key}`)
        .expect(200);
      expect(long.headers['transfer-encoding']).toBe('chunked');
      expect(long.headers['content-length']).toBeUndefined();
      expect(long.text.length).toBeGreaterThan(400_000);
    } finally {
      epic.serveLargeSearch('Observation', undefined);
    }
  });

  it.each([
    [
      'a control character in a query value',
      `/Patient?name=a%0Ab`,
      'The query parameter "name" must not contain control characters',
    ],
    [
      'a control character in the organization',
      null,
      'The organization in the URL must not contain control characters',
    ],
    ['an organization that is not validly percent-encoded', null, 'not validly percent-encoded'],
  ])('refuses %s with a 400 OperationOutcome, and sends nothing on', async (_what, path, message) => {
    const before = epic.calls('fhir');
    const url =
      path !== null
        ? `${org.base}${path}`
        : message.includes('control')
          ? `/gateway/${org.slug}%0A/fhir/Patient`
          : `/gateway/${org.slug}%ZZ/fhir/Patient`;
    const res = await t.http().get(url).set('Authorization', `Bearer ${key}`).expect(400);
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(issueOf(res.body).diagnostics).toContain(message);
    expect(epic.calls('fhir')).toBe(before);
  });

  it("leaves other URLs under /gateway/ to Express: the app's own 404, not an OperationOutcome", async () => {
    for (const path of [`/gateway/${org.slug}/fhirish`, `/gateway/${org.slug}`]) {
      const res = await t.http().get(path).set('Accept', 'application/json').expect(404);
      expect(res.body).not.toHaveProperty('resourceType');
      expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    }
  });

  interface LogLine {
    msg: string;
    req: { id: string; url: string; method: string };
    res?: { statusCode: number };
  }
  /** The log lines that name request `id`, once its request line is written (when the answer has closed). */
  async function logLines(id: string): Promise<LogLine[]> {
    let lines: LogLine[] = [];
    for (let i = 0; i < 50 && !lines.some((entry) => entry.msg.startsWith('request ')); i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      lines = readFileSync(process.env.LOG_FILE!, 'utf8')
        .split('\n')
        .filter((text) => text.includes(`"${id}"`))
        .map((text) => JSON.parse(text) as LogLine);
    }
    return lines;
  }

  it('GATEWAY_REQUEST_LOG: one request line per gateway request, its path without the query, its id echoed', async () => {
    const res = await t
      .http()
      .get(`${org.base}/Patient?family=Lopez&_count=1`)
      .set('Authorization', `Bearer ${key}`)
      .set('X-Request-Id', 'gw-entry-test-1')
      .expect(200);
    expect(res.headers['x-request-id']).toBe('gw-entry-test-1');
    // The line is written when the answer has closed: after the client has it.
    const line = (await logLines('gw-entry-test-1')).find((entry) => entry.msg === 'request completed');
    expect(line).toMatchObject({
      msg: 'request completed',
      req: { id: 'gw-entry-test-1', method: 'GET', url: `${org.base}/Patient` },
      res: { statusCode: 200 },
    });
    expect(JSON.stringify(line)).not.toContain('Lopez');
    // Lines written while the request is served carry its id too (as pino-http binds it).
    epic.failNext('fhir', { status: 503, retryAfter: 600 });
    await t
      .http()
      .get(`${org.base}/Patient/${SEED.camila}`)
      .set('Authorization', `Bearer ${key}`)
      .set('X-Request-Id', 'gw-entry-test-2')
      .expect(503);
    const during = await logLines('gw-entry-test-2');
    expect(during.map((entry) => entry.msg)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('Request failed: EPIC_UNAVAILABLE'),
        'request errored',
      ]),
    );
    for (const entry of during) expect(entry.req.id).toBe('gw-entry-test-2');
    // A request without an id of its own gets one.
    const other = await t
      .http()
      .get(`${org.base}/metadata`)
      .set('Authorization', `Bearer ${key}`)
      .expect(200);
    expect(other.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
