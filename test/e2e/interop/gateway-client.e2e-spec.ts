import { createServer } from 'node:net';

import Client from 'fhir-kit-client';

import { FakeEpic, FakeEpicOptions, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization } from '../gateway/gateway-harness';

/** A free loopback port, so that PUBLIC_BASE_URL can name the address the app will listen on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

type NextPageBundle = Parameters<Client['nextPage']>[0]['bundle'];
type Bundle = {
  resourceType: string;
  total?: number;
  entry?: { fullUrl: string; resource: { id: string } }[];
};

/**
 * A FHIR client library from npm (fhir-kit-client, unchanged) pointed at the gateway, as a customer's
 * integration would be: it reads the CapabilityStatement, reads and searches, and pages by
 * following the Bundle's own links, which must lead back to the gateway. The app listens on a real
 * port named by PUBLIC_BASE_URL, so every URL the gateway gives out is one the client can follow.
 */
describe('a third-party FHIR client (fhir-kit-client) through the gateway', () => {
  let t: TestApp;
  let publicBase: string;

  beforeAll(async () => {
    const port = await freePort();
    publicBase = `http://127.0.0.1:${port}`;
    t = await createTestApp({ env: { PUBLIC_BASE_URL: publicBase } });
    await t.app.listen(port, '127.0.0.1');
  });
  afterAll(() => t.close());

  describe.each<[string, FakeEpicOptions]>([
    ['Epic as documented', {}],
    [
      'a server paging at its base, with escaped slashes',
      { pagingLinks: 'getpages', jsonSlashEscaping: true },
    ],
  ])('against %s', (_name, options) => {
    let epic: FakeEpic;
    let client: Client;
    let gatewayBase: string;

    beforeAll(async () => {
      epic = await startFakeEpic(options);
      const org = await gatewayOrganization(t, epic, { redirectUri: `${publicBase}/fhir/epic-callback` });
      const { secret } = await createApiKey(org, { access: 'read_write' });
      gatewayBase = `${publicBase}${org.base}`;
      client = new Client({ baseUrl: gatewayBase, bearerToken: secret });
    });
    afterAll(() => epic.close());

    it('reads the CapabilityStatement and a Patient', async () => {
      const statement = (await client.capabilityStatement()) as unknown as {
        fhirVersion: string;
        implementation: { url: string };
      };
      expect(statement.fhirVersion).toBe('4.0.1');
      expect(statement.implementation.url).toBe(gatewayBase);
      const patient = (await client.read({ resourceType: 'Patient', id: SEED.camila })) as unknown as {
        id: string;
      };
      expect(patient.id).toBe(SEED.camila);
    });

    it('searches and pages with nextPage to the end, every link leading back to the gateway', async () => {
      let bundle = (await client.search({
        resourceType: 'Observation',
        searchParams: { patient: SEED.camila, _count: 4 },
      })) as unknown as Bundle;
      const total = bundle.total!;
      const ids: string[] = [];
      for (let page = 0; page < 20; page++) {
        for (const entry of bundle.entry ?? []) {
          expect(entry.fullUrl.startsWith(`${gatewayBase}/Observation/`)).toBe(true);
          ids.push(entry.resource.id);
        }
        const next = (await client.nextPage({ bundle: bundle as unknown as NextPageBundle })) as unknown as
          Bundle | undefined;
        if (!next) break;
        bundle = next;
      }
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      expect(total).toBeGreaterThan(8);
    });

    it('creates and updates through the gateway', async () => {
      const created = (await client.create({
        resourceType: 'Patient',
        body: { resourceType: 'Patient', name: [{ family: 'Okafor' }] },
      })) as unknown as { id: string };
      const updated = (await client.update({
        resourceType: 'Patient',
        id: created.id,
        body: { resourceType: 'Patient', id: created.id, name: [{ family: 'Okafor-Lin' }] },
      })) as unknown as { meta: { versionId: string } };
      expect(updated.meta.versionId).toBe('2');
      expect(epic.resource('Patient', created.id)).toMatchObject({ name: [{ family: 'Okafor-Lin' }] });
    });

    it('gets an OperationOutcome it can read for a key it does not have', async () => {
      const stranger = new Client({ baseUrl: gatewayBase, bearerToken: 'not-a-key' });
      const error = (await stranger
        .read({ resourceType: 'Patient', id: SEED.camila })
        .catch((e: unknown) => e)) as {
        response: { status: number; data: { resourceType: string } };
      };
      expect(error.response.status).toBe(401);
      expect(error.response.data.resourceType).toBe('OperationOutcome');
    });
  });
});
