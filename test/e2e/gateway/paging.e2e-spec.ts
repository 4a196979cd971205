import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization, issueOf } from './gateway-harness';

/** PUBLIC_BASE_URL in tests: the gateway base in rewritten URLs. */
const PUBLIC = 'http://localhost:3000';

interface Page {
  total: number;
  link: { relation: string; url: string }[];
  entry?: { resource: { id: string; resourceType: string } }[];
}

/**
 * A key with a resource-type allow-list and a server that pages at its base
 * (`[base]?_getpages=<id>`, HAPI FHIR's layout): the key follows the links the gateway gave it in
 * the answers to its own searches, and no other.
 */
describe('FHIR gateway: paging at the base for a key with a type allow-list', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let limited: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic({ pagingLinks: 'getpages' })]);
    org = await gatewayOrganization(t, epic);
    limited = (await createApiKey(org, { resourceTypes: ['Observation'] })).secret;
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const get = (path: string, key: string) => t.http().get(path).set('Authorization', `Bearer ${key}`);
  const nextOf = (page: Page) => page.link.find((link) => link.relation === 'next')?.url;

  it('follows the paging links of its own search to the end', async () => {
    let page = (await get(`${org.base}/Observation?patient=${SEED.camila}&_count=3`, limited).expect(200))
      .body as Page;
    const ids: string[] = [];
    for (;;) {
      for (const entry of page.entry ?? []) {
        expect(entry.resource.resourceType).toBe('Observation');
        ids.push(entry.resource.id);
      }
      const next = nextOf(page);
      if (!next) break;
      expect(next).toMatch(new RegExp(`^${PUBLIC}${org.base}\\?_getpages=`));
      page = (await get(next.slice(PUBLIC.length), limited).expect(200)).body as Page;
    }
    expect(ids.length).toBe(page.total);
    expect(ids.length).toBeGreaterThan(3);
  });

  it("refuses another key's paging link, and one it was never given, with 403 saying why", async () => {
    const other = (await createApiKey(org, { resourceTypes: ['Observation'] })).secret;
    const first = (await get(`${org.base}/Observation?patient=${SEED.camila}&_count=3`, limited).expect(200))
      .body as Page;
    const next = nextOf(first)!.slice(PUBLIC.length);
    const before = epic.calls('fhir');
    for (const [path, key] of [
      [next, other],
      [`${org.base}?_getpages=made-up-id&_getpagesoffset=3&_count=3`, limited],
    ]) {
      const refused = await get(path, key).expect(403);
      expect(issueOf(refused.body)).toMatchObject({
        code: 'forbidden',
        diagnostics: expect.stringContaining('Repeat the search'),
      });
    }
    // Its own link, with more than paging parameters, is a request at the base like any other.
    await get(`${next}&_type=Patient`, limited).expect(403);
    expect(epic.calls('fhir')).toBe(before); // nothing was sent
    await get(next, limited).expect(200);
  });

  it("grants nothing for a paging link written in a resource's text", async () => {
    // Another key's search: a paging id the server keeps.
    const other = (await createApiKey(org, { resourceTypes: ['Observation'] })).secret;
    const theirs = (await get(`${org.base}/Observation?patient=${SEED.camila}&_count=3`, other).expect(200))
      .body as Page;
    const next = nextOf(theirs)!.slice(PUBLIC.length);
    const link = `${epic.fhirBase}${next.slice(org.base.length)}`;
    // A resource the limited key may read, whose text carries that link (at the server's own base).
    epic.addResource({
      resourceType: 'Observation',
      id: 'planted-paging-link',
      status: 'final',
      code: { text: 'Note' },
      subject: { reference: `Patient/${SEED.camila}` },
      valueString: link,
      text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${link}</div>` },
    });
    await get(`${org.base}/Observation/planted-paging-link`, limited).expect(200);
    const refused = await get(next, limited).expect(403);
    expect(issueOf(refused.body)).toMatchObject({
      diagnostics: expect.stringContaining('Repeat the search'),
    });
  });
});
