import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { DatabaseEndpoint } from 'src/database/database-endpoint';
import { parseTokenResponse } from 'src/epic-auth/token-response';
import { TokenStoreService } from 'src/connections/token-store.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import {
  connectedOrganization,
  registeredOrganization,
  setStoredExpiry,
  SignedIn,
} from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createEmbeddedTestApp } from 'test/setup/embedded-database';
import { listenOnLoopback, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;
/** Long enough that a token call stuck on the app's own JWK Set is told apart from a quick one. */
const EPIC_HTTP_TIMEOUT_MS = 6_000;
/** "Quick": well under the HTTP timeout, with room for a busy two-core machine. */
const QUICK_MS = EPIC_HTTP_TIMEOUT_MS / 2;

/**
 * The embedded database has one connection. A token call made while holding it deadlocks as soon
 * as Epic fetches the app's JWK Set during that call (Epic does so when its cache is cold, or when
 * a key it has does not verify; the fake's `fetch-every-call` does it every time). So: no database
 * connection is held across a call to Epic, and the JWK Set is served from memory.
 */
describe('no database connection is held across a call to Epic (embedded database, one connection)', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;
  let jwksUrl: string;

  beforeAll(async () => {
    epic = await startFakeEpic({ clientJwksCache: 'fetch-every-call' });
    t = await createEmbeddedTestApp({
      env: { EPIC_HTTP_TIMEOUT_MS: String(EPIC_HTTP_TIMEOUT_MS), REFRESH_COOLDOWN_SECONDS: '0' },
    });
    jwksUrl = `${await listenOnLoopback(t)}/.well-known/jwks-sandbox.json`; // sandbox organizations
    fhir = t.app.get(FhirClientService);
    // A precondition, not a finding: everything below means something only with one connection.
    const endpoint = t.app.get(DatabaseEndpoint);
    if (endpoint.mode !== 'embedded' || endpoint.poolSize !== 1) throw new Error('not the embedded database');
  }, 60_000);
  afterAll(async () => {
    await epic?.close();
    await t?.close();
  });
  afterEach(() => epic.clearFaults());

  async function backendOrganization(): Promise<{ orgId: string; admin: SignedIn; clientId: string }> {
    const registered = await registeredOrganization(t, epic, {
      jwksUrl,
      backend: {},
      scopes: 'system/Patient.read system/Observation.read',
    });
    await registered.admin.agent
      .post(`/connect_epic/${registered.orgId}`)
      .type('form')
      .send({ _csrf: registered.admin.csrf })
      .expect(303);
    return registered;
  }

  const grants = (clientId: string, grantType: string) =>
    epic.requests('token').filter((r) => r.clientId === clientId && r.grantType === grantType);
  const version = async (orgId: string) =>
    (
      await t.dataSource.query<{ version: number }[]>(
        'SELECT version FROM epic_credential WHERE organization_id = $1 AND user_id IS NULL',
        [orgId],
      )
    )[0]?.version;

  /** Runs `work` and says how long it took and when it ended. */
  async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number; endedAt: number }> {
    const started = performance.now();
    const value = await work;
    const endedAt = performance.now();
    return { value, ms: endedAt - started, endedAt };
  }

  it('renews a backend-service token quickly while Epic fetches the JWK Set during the call', async () => {
    const { orgId, clientId } = await backendOrganization();
    expect(grants(clientId, 'client_credentials').map((g) => g.status)).toEqual([200]);
    const fetchesBefore = epic.jwksFetches().length;

    await setStoredExpiry(t, orgId, -MINUTE); // ended: the read cannot go ahead without a new token
    epic.expireAccessTokens();
    const read = await timed(fhir.forOrganization(orgId).read('Patient', SEED.camila));

    expect(read.value.id).toBe(SEED.camila);
    expect(read.ms).toBeLessThan(QUICK_MS);
    const renewals = grants(clientId, 'client_credentials');
    expect(renewals.map((g) => g.status)).toEqual([200, 200]);
    expect(renewals[1].rejection).toBeUndefined();
    expect(epic.jwksFetches().length).toBeGreaterThan(fetchesBefore); // fetched during the renewal
    expect(await version(orgId)).toBe(2);
  });

  it('the scheduled check renews a backend-service token quickly too', async () => {
    const { orgId, clientId } = await backendOrganization();
    await setStoredExpiry(t, orgId, MINUTE);

    const tick = await timed(t.app.get(ScheduledCheckService).tick());

    expect(tick.value?.refreshed).toBeGreaterThanOrEqual(1);
    expect(tick.ms).toBeLessThan(QUICK_MS);
    expect(grants(clientId, 'client_credentials').map((g) => g.status)).toEqual([200, 200]);
    expect(await version(orgId)).toBe(2);
  });

  it('refreshes an interactive private_key_jwt connection quickly', async () => {
    const { orgId, clientId } = await connectedOrganization(t, epic, { jwksUrl });
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.expireAccessTokens();

    const read = await timed(fhir.forOrganization(orgId).read('Patient', SEED.camila));

    expect(read.value.id).toBe(SEED.camila);
    expect(read.ms).toBeLessThan(QUICK_MS);
    expect(grants(clientId, 'refresh_token').map((g) => g.status)).toEqual([200]);
    expect(await version(orgId)).toBe(2);
  });

  it('serves other pages, and the JWK Set, while a token call is in flight', async () => {
    const { orgId, admin, clientId } = await backendOrganization();
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.expireAccessTokens();
    // Epic holds the renewal open for 1.5 s (then processes it normally).
    epic.failNext('token', { delayMs: 1500 }, { grantType: 'client_credentials' });
    const renewal = timed(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    await waitFor(() => grants(clientId, 'client_credentials').length === 2);

    // Pages that need the database: a signed-in status page (session and credential) and readiness.
    const [status, ready, jwks] = await Promise.all([
      timed(admin.agent.get('/fhir/epic-status').query({ org: orgId })),
      timed(t.http().get('/health/ready')),
      timed(t.http().get('/.well-known/jwks-sandbox.json')),
    ]);
    const renewed = await renewal;

    expect(status.value.status).toBe(200);
    expect(status.value.body).toMatchObject({ connected: true });
    expect(ready.value.status).toBe(200);
    expect(jwks.value.status).toBe(200);
    expect((jwks.value.body as { keys: unknown[] }).keys.length).toBeGreaterThanOrEqual(2);
    // Each answered while Epic still held the token call.
    for (const page of [status, ready, jwks]) expect(page.endedAt).toBeLessThan(renewed.endedAt);
    expect(Math.max(status.ms, ready.ms, jwks.ms)).toBeLessThan(1000);

    expect(renewed.value.id).toBe(SEED.camila);
    expect(grants(clientId, 'client_credentials').map((g) => g.status)).toEqual([200, 200]);
    expect(await version(orgId)).toBe(2);
  });

  describe('the refresh lease (one refresh in flight per credential across instances)', () => {
    /** Another instance claims the lease, as TokenRefreshService does, for `ms`. */
    const leaseElsewhere = (orgId: string, ms: number) =>
      t.dataSource.query(
        `UPDATE epic_credential
            SET refresh_lease_id = gen_random_uuid(), refresh_lease_until = now() + $2 * interval '1 millisecond'
          WHERE organization_id = $1 AND user_id IS NULL`,
        [orgId, ms],
      );
    const lease = async (orgId: string) =>
      (
        await t.dataSource.query<{ refresh_lease_id: string | null }[]>(
          'SELECT refresh_lease_id FROM epic_credential WHERE organization_id = $1 AND user_id IS NULL',
          [orgId],
        )
      )[0].refresh_lease_id;

    it('waits for a lease held elsewhere and uses the token its holder stored', async () => {
      const { orgId, clientId } = await connectedOrganization(t, epic);
      await setStoredExpiry(t, orgId, -MINUTE);
      epic.expireAccessTokens();
      await leaseElsewhere(orgId, 30_000);

      const read = fhir.forOrganization(orgId).read('Patient', SEED.camila);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(grants(clientId, 'refresh_token')).toHaveLength(0); // waiting, not calling Epic
      await refreshAsTheLeaseHolder(orgId);

      expect((await read).id).toBe(SEED.camila);
      expect(grants(clientId, 'refresh_token')).toHaveLength(1); // the holder's only
      expect(await version(orgId)).toBe(2);
    });

    it('takes over a lease its holder left behind (a crashed instance) once it expires', async () => {
      const { orgId, clientId } = await connectedOrganization(t, epic);
      await setStoredExpiry(t, orgId, -MINUTE);
      epic.expireAccessTokens();
      await leaseElsewhere(orgId, 1_500);

      const read = await timed(fhir.forOrganization(orgId).read('Patient', SEED.camila));

      expect(read.value.id).toBe(SEED.camila);
      expect(read.ms).toBeGreaterThan(1_000);
      expect(read.ms).toBeLessThan(1_500 + QUICK_MS);
      expect(grants(clientId, 'refresh_token').map((g) => g.status)).toEqual([200]);
      expect(await version(orgId)).toBe(2);
      expect(await lease(orgId)).toBeNull(); // released with the write
    });

    /**
     * Plays the other instance finishing its refresh: the refresh-token grant at the fake with the
     * connection's own client authentication, then compare-and-set through the app's store, and
     * the lease cleared.
     */
    async function refreshAsTheLeaseHolder(orgId: string): Promise<void> {
      const store = t.app.get(TokenStoreService);
      const credential = (await store.findOrganizationCredential(orgId))!;
      const { refreshToken } = await store.reveal(credential);
      const exchange = epic.requests('token', { grantType: 'authorization_code' }).at(-1)!;
      const response = await fetch(epic.tokenUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: String(exchange.headers.authorization),
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken! }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as Record<string, unknown>;
      await t.dataSource.transaction(async (manager) => {
        expect(await store.rotate(manager, credential, parseTokenResponse(body, new Date()))).not.toBeNull();
        await manager.query(
          `UPDATE epic_credential SET refresh_lease_id = NULL, refresh_lease_until = NULL WHERE id = $1`,
          [credential.id],
        );
      });
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
