// Bulk Data (https://hl7.org/fhir/uv/bulkdata/export.html): kick-off, polling, manifest, files, cancel.
import { BULK_FILES_PATH } from './bulk-data';
import { createClientKey, signClientAssertion } from './client-keys';
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { postToken } from './spec-helpers';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

describe('fake Epic: Bulk Data', () => {
  let epic: FakeEpic;
  let token: string;
  let otherToken: string;

  /** A backend client's token (client_credentials with a JWT, as at Epic). */
  async function backendToken(): Promise<string> {
    const key = await createClientKey('RS384');
    const client = epic.registerClient({ audience: 'backend', jwks: { keys: [key.publicJwk] } });
    const assertion = await signClientAssertion(key, { clientId: client.clientId, tokenUrl: epic.tokenUrl });
    const res = await postToken(epic, {
      grant_type: 'client_credentials',
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
    return res.body.access_token as string;
  }

  const get = (url: string, bearer: string | null = token, headers: Record<string, string> = {}) =>
    fetch(url.startsWith('http') ? url : `${epic.fhirBase}/${url}`, {
      headers: { ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}), ...headers },
    });
  const kickOff = (path: string, headers: Record<string, string> = {}) =>
    get(path, token, { Accept: 'application/fhir+json', Prefer: 'respond-async', ...headers });

  /** Polls until the manifest, returning the in-progress answers seen on the way. */
  async function manifestOf(status: string): Promise<{ progress: Response[]; manifest: Manifest }> {
    const progress: Response[] = [];
    for (;;) {
      const res = await get(status);
      if (res.status === 200) return { progress, manifest: (await res.json()) as Manifest };
      expect(res.status).toBe(202);
      progress.push(res);
    }
  }

  beforeAll(async () => {
    epic = await startFakeEpic();
    [token, otherToken] = await Promise.all([backendToken(), backendToken()]);
  });
  afterAll(() => epic.close());
  afterEach(() => epic.bulkData());

  it('Patient-level: 202 with Content-Location, 202 polls with X-Progress and Retry-After, then the manifest', async () => {
    const start = await kickOff('Patient/$export?_type=Patient,Observation');
    expect(start.status).toBe(202);
    const status = start.headers.get('content-location')!;
    expect(status).toMatch(new RegExp(`^${epic.fhirBase}/BulkRequest/[0-9a-f-]{36}$`));
    const { progress, manifest } = await manifestOf(status);
    expect(progress.map((res) => [res.headers.get('x-progress'), res.headers.get('retry-after')])).toEqual([
      ['Processing (1 of 2)', '1'],
      ['Processing (2 of 2)', '1'],
    ]);
    expect(manifest).toMatchObject({
      request: `${epic.fhirBase}/Patient/$export?_type=Patient,Observation`,
      requiresAccessToken: true,
      error: [],
    });
    expect(manifest.output.map((file) => file.type)).toEqual(['Patient', 'Observation']);
    const patients = manifest.output[0];
    expect(patients.url.startsWith(`${status}/`)).toBe(true);
    const file = await get(patients.url);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('application/fhir+ndjson');
    const lines = (await file.text()).trim().split('\n');
    expect(lines).toHaveLength(patients.count);
    expect(lines.map((line) => (JSON.parse(line) as { id: string }).id)).toContain(SEED.camila);
  });

  it('Group-level exports its members only; an unknown group is 404', async () => {
    epic.addResource({
      resourceType: 'Group',
      id: 'bulk-group',
      type: 'person',
      actual: true,
      member: [{ entity: { reference: `Patient/${SEED.camila}` } }],
    });
    epic.bulkData({ pollsBeforeDone: 0 });
    const start = await kickOff('Group/bulk-group/$export?_type=Patient,Observation');
    expect(start.status).toBe(202);
    const { manifest } = await manifestOf(start.headers.get('content-location')!);
    for (const output of manifest.output) {
      const text = await (await get(output.url)).text();
      for (const line of text.trim().split('\n')) {
        const resource = JSON.parse(line) as { id: string; subject?: { reference: string } };
        expect(resource.subject?.reference ?? `Patient/${resource.id}`).toBe(`Patient/${SEED.camila}`);
      }
    }
    expect((await kickOff('Group/nobody/$export')).status).toBe(404);
  });

  it('refuses a kick-off without Prefer: respond-async, or for types outside the scopes', async () => {
    const sync = await get('Patient/$export', token, { Accept: 'application/fhir+json' });
    expect(sync.status).toBe(400);
    expect((await kickOff('Patient/$export?_type=MedicationRequest')).status).toBe(403);
  });

  it('status and files need the bearer of the client that kicked off; DELETE cancels', async () => {
    epic.bulkData({ pollsBeforeDone: 0 });
    const status = (await kickOff('Patient/$export?_type=Patient')).headers.get('content-location')!;
    expect((await get(status, null)).status).toBe(401);
    expect((await get(status, otherToken)).status).toBe(403);
    const { manifest } = await manifestOf(status);
    const url = manifest.output[0].url;
    expect((await get(url, null)).status).toBe(401);
    expect((await get(url, otherToken)).status).toBe(403);
    const cancel = await fetch(status, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
    expect(cancel.status).toBe(202);
    expect((await get(status)).status).toBe(404);
    expect((await get(url)).status).toBe(404);
  });

  it("files 'elsewhere' are outside the FHIR base and still need the bearer", async () => {
    epic.bulkData({ pollsBeforeDone: 0, files: 'elsewhere' });
    const status = (await kickOff('Patient/$export?_type=Patient')).headers.get('content-location')!;
    const { manifest } = await manifestOf(status);
    const url = manifest.output[0].url;
    expect(url.startsWith(`${new URL(epic.fhirBase).origin}${BULK_FILES_PATH}/`)).toBe(true);
    expect(url.startsWith(epic.fhirBase)).toBe(false);
    expect((await get(url, null)).status).toBe(401);
    expect((await get(url, otherToken)).status).toBe(401);
    const file = await get(url);
    expect(file.status).toBe(200);
    expect((await file.text()).trim().split('\n')).toHaveLength(manifest.output[0].count);
  });

  it('generates a large file piece by piece', async () => {
    const produced = epic.bulkData({
      pollsBeforeDone: 0,
      largeFile: { type: 'Observation', lines: 1000, bytesPerLine: 500 },
    });
    const before = produced();
    const status = (await kickOff('Patient/$export?_type=Observation')).headers.get('content-location')!;
    const { manifest } = await manifestOf(status);
    expect(manifest.output).toEqual([expect.objectContaining({ type: 'Observation', count: 1000 })]);
    const text = await (await get(manifest.output[0].url)).text();
    expect(text.trim().split('\n')).toHaveLength(1000);
    expect(produced() - before).toBe(Buffer.byteLength(text));
  });
});
