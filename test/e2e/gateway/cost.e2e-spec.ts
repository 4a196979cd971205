import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Client } from 'pg';

import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization } from './gateway-harness';

const MB = 1024 * 1024;

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
    const fullUrl = Buffer.from(`"fullUrl":"http://localhost:3000${org.base}/Observation/large-`);
    const upstream = Buffer.from(new URL(epic.fhirBase).host);
    // Memory that is garbage is not memory held: collect it while sampling, so that what grows is
    // what the pipeline keeps (node's --expose-gc, set for this process).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage().rss;
    let peakRss = baseline;
    let received = 0;
    let peakInFlight = 0;
    // A full collection every 50 ms: often enough to see what is held, not so often that a busy
    // machine spends the test collecting.
    const sampler = setInterval(() => {
      gc();
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    try {
      const result = await new Promise<{ status: number; rewritten: number; leaks: number }>(
        (resolve, reject) => {
          const req = httpRequest(
            `${appUrl}${org.base}/Observation`,
            { headers: { Authorization: `Bearer ${key}`, Accept: 'application/fhir+json' } },
            (res) => {
              let rewritten = 0;
              let leaks = 0;
              let tail = Buffer.alloc(0);
              const count = (haystack: Buffer, needle: Buffer) => {
                let n = 0;
                for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) n++;
                return n;
              };
              res.on('data', (chunk: Buffer) => {
                received += chunk.length;
                // Bytes the fake produced that this reader has not got: what the pipeline holds.
                peakInFlight = Math.max(peakInFlight, produced() - received);
                // Matches inside the piece, and across the cut from the piece before.
                const seam = Buffer.concat([tail, chunk.subarray(0, fullUrl.length - 1)]);
                rewritten += count(chunk, fullUrl) + count(seam, fullUrl);
                leaks += count(chunk, upstream) + count(seam, upstream);
                tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (fullUrl.length - 1))));
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, rewritten, leaks }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
      expect(result.status).toBe(200);
      expect(received).toBeGreaterThan(30_000_000);
      expect(result.rewritten).toBe(entries);
      expect(result.leaks).toBe(0);
      // Socket buffers on both hops and a few pieces in the pipeline; a buffered Bundle would be 30 MB.
      expect(peakInFlight / MB).toBeLessThan(16);
      // Generous: the fake, the app and this reader share the process.
      expect((peakRss - baseline) / MB).toBeLessThan(30);
    } finally {
      clearInterval(sampler);
      epic.serveLargeSearch('Observation', undefined);
    }
  }, 120_000);
});
