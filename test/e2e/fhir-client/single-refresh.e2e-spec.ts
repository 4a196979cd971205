import { parseTokenResponse } from 'src/epic-auth/token-response';
import { TokenStoreService } from 'src/connections/token-store.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, connectionRow, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * Exactly one refresh per credential: many concurrent requests in one instance, and two
 * instances (two Nest applications on one database, as behind a load balancer).
 * Both apps stay open until the end: passport is a process-wide singleton, so closing one
 * would break sign-in on the other (a test-only concern: production runs one app per process).
 */
describe('one refresh in flight per credential, across instances', () => {
  let a: TestApp;
  let b: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    epic = await startFakeEpic();
    a = await createTestApp({ databaseUrl });
    b = await createTestApp({ databaseUrl });
  });
  afterAll(async () => {
    await epic.close();
    await a.close();
    await b.close();
  });
  afterEach(() => epic.clearFaults());

  const refreshes = () => epic.calls('token', { grantType: 'refresh_token' });
  const reads = (app: TestApp, orgId: string, count: number) =>
    Array.from({ length: count }, () =>
      app.app.get(FhirClientService).forOrganization(orgId).read('Patient', SEED.camila),
    );
  /** Epic no longer honours the token and the app knows it expired. */
  const expire = async (orgId: string) => {
    epic.expireAccessTokens();
    await setStoredExpiry(a, orgId, -60_000);
  };

  it('200 concurrent requests on an expired token make one token call and all succeed', async () => {
    const { orgId } = await connectedOrganization(a, epic);
    await expire(orgId);
    const before = refreshes();

    const results = await Promise.allSettled(reads(a, orgId, 200));

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200);
    expect(refreshes()).toBe(before + 1);
    expect((await connectionRow(a, orgId)).credential!.version).toBe(2);
  });

  it('200 concurrent 401s (token revoked early at Epic) make one token call and all succeed', async () => {
    const { orgId } = await connectedOrganization(a, epic);
    epic.expireAccessTokens(); // the stored expiry still looks fine: every request gets a 401
    const before = refreshes();

    const results = await Promise.allSettled(reads(a, orgId, 200));

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200);
    expect(refreshes()).toBe(before + 1);
  });

  it('two instances, 100 requests each, on an expired token: still exactly one token call', async () => {
    const { orgId } = await connectedOrganization(a, epic);
    await expire(orgId);
    const before = refreshes();

    const results = await Promise.allSettled([...reads(a, orgId, 100), ...reads(b, orgId, 100)]);

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200);
    expect(refreshes()).toBe(before + 1);
    expect((await connectionRow(b, orgId)).credential!.version).toBe(2);
  });

  it('two instances with 401s on both sides: still exactly one token call', async () => {
    const { orgId } = await connectedOrganization(a, epic);
    epic.expireAccessTokens();
    const before = refreshes();

    const results = await Promise.allSettled([...reads(a, orgId, 100), ...reads(b, orgId, 100)]);

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200);
    expect(refreshes()).toBe(before + 1);
  });

  it('rolling refresh tokens: each instance uses the token its sibling rotated, never a spent one', async () => {
    const { orgId } = await connectedOrganization(a, epic, { refreshMode: 'rolling' });
    for (const [first, second] of [
      [a, b],
      [b, a],
      [a, b],
    ] as const) {
      await expire(orgId);
      await Promise.all([...reads(first, orgId, 20), ...reads(second, orgId, 20)]);
    }
    const rolling = epic.requests('token', { grantType: 'refresh_token' }).slice(-3);
    expect(rolling.map((r) => r.status)).toEqual([200, 200, 200]);
    // Each refresh presented the refresh token the previous one returned.
    for (let i = 1; i < rolling.length; i++) {
      const issued = (rolling[i - 1].responseBody as { refresh_token: string }).refresh_token;
      expect(rolling[i].form!.refresh_token).toBe(issued);
    }
    expect((await connectionRow(a, orgId)).credential!.version).toBe(4);
  });

  it('a sibling that rotated the refresh token without the lock: invalid_grant is re-read, not fatal', async () => {
    const { orgId } = await connectedOrganization(a, epic, { refreshMode: 'rolling' });
    await expire(orgId);
    // Our refresh is slow to reach Epic; meanwhile a sibling outside our lock (an older release
    // during a rolling deploy, say) refreshes with the same refresh token and stores the result.
    epic.failNext('token', { delayMs: 800 }, { count: 1, grantType: 'refresh_token' });
    const ours = reads(a, orgId, 1)[0];
    await new Promise((resolve) => setTimeout(resolve, 200));
    await siblingRefreshWithoutLock(a, orgId);

    const patient = await ours;

    expect(patient.id).toBe(SEED.camila);
    // Ours arrived first and was answered last: Epic refused the spent refresh token.
    const [oursAtEpic, siblingAtEpic] = epic.requests('token', { grantType: 'refresh_token' }).slice(-2);
    expect(siblingAtEpic.status).toBe(200);
    expect(oursAtEpic).toMatchObject({ status: 400, responseBody: { error: 'invalid_grant' } });
    const row = await connectionRow(a, orgId);
    expect(row).toMatchObject({ isConnected: true });
    expect(row.credential!.version).toBe(2); // the sibling's write, not ours
  });

  /**
   * Plays an instance that does not take the advisory lock: refreshes at the fake with the stored
   * refresh token and writes the rotated tokens with compare-and-set, through the app's own store.
   */
  async function siblingRefreshWithoutLock(app: TestApp, orgId: string): Promise<void> {
    const store = app.app.get(TokenStoreService);
    const credential = (await store.findOrganizationCredential(orgId))!;
    const { refreshToken } = await store.reveal(credential);
    // The connection's own client authentication, from its code exchange (the latest one).
    const client = epic.requests('token', { grantType: 'authorization_code' }).at(-1)!;
    const response = await fetch(epic.tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: String(client.headers.authorization),
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken! }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(200);
    await app.dataSource.transaction((manager) =>
      store.rotate(manager, credential, parseTokenResponse(body, new Date())),
    );
  }
});
