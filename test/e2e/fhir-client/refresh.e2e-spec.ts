import { readFileSync } from 'node:fs';

import { EventEmitter2 } from '@nestjs/event-emitter';

import { ConnectionEvent, ConnectionEvents } from 'src/connections/connections.events';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, connectionRow, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, FakeEpicFault, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

/** The FhirClientError a promise rejects with (fails the test if it resolves or rejects otherwise). */
async function failure(promise: Promise<unknown>): Promise<FhirClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof FhirClientError)) {
    throw new Error(`expected a FhirClientError, got ${String(error)}`);
  }
  return error;
}

describe('FhirClient: refresh before expiry and on 401, failure classification', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;
  const events: { name: string; event: ConnectionEvent }[] = [];

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      // A short timeout, so that a late token endpoint is a quick test.
      createTestApp({
        env: { REFRESH_COOLDOWN_SECONDS: '30', FHIR_RETRY_ATTEMPTS: '2', EPIC_HTTP_TIMEOUT_MS: '1000' },
      }),
      startFakeEpic(),
    ]);
    fhir = t.app.get(FhirClientService);
    const emitter = t.app.get(EventEmitter2);
    for (const name of Object.values(ConnectionEvents)) {
      emitter.on(name, (event: ConnectionEvent) => events.push({ name, event }));
    }
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  const refreshes = () => epic.calls('token', { grantType: 'refresh_token' });
  const connect = (options: { persistentAccess?: boolean } = {}) => connectedOrganization(t, epic, options);
  const eventsFor = (orgId: string) =>
    events.filter((e) => e.event.organizationId === orgId).map((e) => e.name);

  it('reads with the stored token, records lastSync, and does not refresh a token with time left', async () => {
    const { orgId } = await connect();
    const before = refreshes();
    const patient = await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    expect(patient).toMatchObject({ resourceType: 'Patient', id: SEED.camila });
    expect(refreshes()).toBe(before);
    const row = await connectionRow(t, orgId);
    expect(row.lastSync).not.toBeNull();
    expect(row.credential!.version).toBe(1);
    const call = epic.requests('fhir').at(-1)!;
    expect(call.headers.authorization).toMatch(/^Bearer /);
    expect(call.headers.accept).toBe('application/fhir+json');
  });

  it('refreshes first when the token expires within the margin, and stores the new one', async () => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, 4 * MINUTE); // inside the default 5-minute margin
    const before = refreshes();
    const oldCipher = (await connectionRow(t, orgId)).credential!.accessTokenEnc;

    await fhir.forOrganization(orgId).read('Patient', SEED.camila);

    expect(refreshes()).toBe(before + 1);
    const row = await connectionRow(t, orgId);
    expect(row.credential!.version).toBe(2);
    expect(row.credential!.accessTokenEnc).not.toBe(oldCipher);
    expect(new Date(row.credential!.expiresAt).getTime()).toBeGreaterThan(Date.now() + 50 * MINUTE);
    expect(row).toMatchObject({ isConnected: true, lastError: null });
    expect(new Date(row.tokenExpiry!).getTime()).toBe(new Date(row.credential!.expiresAt).getTime());
    // The FHIR call used the new token: the fake still honours it.
    const used = String(epic.requests('fhir').at(-1)!.headers.authorization).replace('Bearer ', '');
    expect(epic.inspectToken(used)).toMatchObject({ active: true });
    expect(eventsFor(orgId)).toContain(ConnectionEvents.TokenRefreshed);

    const audit = await t.dataSource.query<{ action: string; outcome: string }[]>(
      `SELECT action, outcome FROM audit_event WHERE organization_id = $1 AND action = 'epic.refresh'`,
      [orgId],
    );
    expect(audit).toEqual([{ action: 'epic.refresh', outcome: 'success' }]);
  });

  it('does not refresh a token that expires just outside the margin', async () => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, 6 * MINUTE);
    const before = refreshes();
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    expect(refreshes()).toBe(before);
  });

  it('on 401 refreshes once and replays the request once', async () => {
    const { orgId } = await connect();
    epic.expireAccessTokens(); // Epic no longer honours the token; the app still thinks it valid
    const before = refreshes();
    const fhirBefore = epic.calls('fhir');

    const patient = await fhir.forOrganization(orgId).read('Patient', SEED.camila);

    expect(patient.id).toBe(SEED.camila);
    expect(refreshes()).toBe(before + 1);
    const calls = epic.requests('fhir').slice(fhirBefore);
    expect(calls.map((c) => c.status)).toEqual([401, 200]);
    expect(calls[0].headers.authorization).not.toEqual(calls[1].headers.authorization);
  });

  it('a second 401 after the refresh is an authentication failure: no loop, tokens cleared', async () => {
    const { orgId } = await connect();
    epic.failNext('fhir', { status: 401 }, 2);
    const before = refreshes();
    const fhirBefore = epic.calls('fhir');

    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));

    expect(error.kind).toBe(FhirErrorKind.ReauthenticationRequired);
    expect(refreshes()).toBe(before + 1);
    expect(epic.calls('fhir') - fhirBefore).toBe(2);
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: false, credential: null });
    expect(row.lastError).toMatch(/401.*Re-authenticate/);
    expect(eventsFor(orgId)).toContain(ConnectionEvents.Lost);
  });

  it('without a refresh token, an expired token fails fast with re-authentication required', async () => {
    const { orgId } = await connect({ persistentAccess: false });
    await setStoredExpiry(t, orgId, -MINUTE);
    const tokenCalls = epic.calls('token');
    const fhirCalls = epic.calls('fhir');

    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));

    expect(error.kind).toBe(FhirErrorKind.ReauthenticationRequired);
    expect(error.message).toMatch(/no refresh token/);
    expect(epic.calls('token')).toBe(tokenCalls);
    expect(epic.calls('fhir')).toBe(fhirCalls);
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: false, credential: null });
    expect(row.lastError).toMatch(/no refresh token.*Re-authenticate/);
    expect(row.tokenExpiry).not.toBeNull(); // "expired", not "never connected"
  });

  it('without a refresh token, a token still valid inside the margin is used as is', async () => {
    const { orgId } = await connect({ persistentAccess: false });
    await setStoredExpiry(t, orgId, 2 * MINUTE);
    const tokenCalls = epic.calls('token');
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    expect(epic.calls('token')).toBe(tokenCalls);
  });

  it('a rejected refresh (invalid_grant) is terminal: tokens cleared, connection marked, event emitted', async () => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.rejectRefresh(1);

    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));

    expect(error.kind).toBe(FhirErrorKind.ReauthenticationRequired);
    expect(error.message).toMatch(/invalid_grant/);
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: false, credential: null });
    expect(row.lastError).toMatch(/invalid_grant.*Re-authenticate/);
    expect(eventsFor(orgId)).toContain(ConnectionEvents.Lost);
    const audit = await t.dataSource.query<{ outcome: string; detail: Record<string, unknown> }[]>(
      `SELECT outcome, detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.refresh'`,
      [orgId],
    );
    expect(audit).toEqual([
      {
        outcome: 'failure',
        detail: expect.objectContaining({ failure: 'invalid_grant', tokensCleared: true }),
      },
    ]);
    // Later calls say "not connected" without asking Epic.
    const tokenCalls = epic.calls('token');
    expect((await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila))).kind).toBe(
      FhirErrorKind.NotConnected,
    );
    expect(epic.calls('token')).toBe(tokenCalls);
  });

  it.each(['invalid_client', 'unauthorized_client'] as const)(
    '%s on refresh is terminal too',
    async (oauthError) => {
      const { orgId } = await connect();
      await setStoredExpiry(t, orgId, -MINUTE);
      // invalid_client is retried once with the other Basic encoding (README "Works with"): refuse both.
      const count = oauthError === 'invalid_client' ? 2 : 1;
      epic.failNext('token', { oauthError }, { count, grantType: 'refresh_token' });
      const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
      expect(error.kind).toBe(FhirErrorKind.ReauthenticationRequired);
      const row = await connectionRow(t, orgId);
      expect(row).toMatchObject({ isConnected: false, credential: null });
      expect(row.lastError).toContain(oauthError);
    },
  );

  it('a refresh token that can no longer be decrypted (key removed) is terminal, without asking Epic', async () => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, -MINUTE);
    await t.dataSource.query(
      `UPDATE epic_credential SET refresh_token_enc = 'v1.retired-key.AAAA' WHERE organization_id = $1`,
      [orgId],
    );
    const before = refreshes();
    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    expect(error.kind).toBe(FhirErrorKind.ReauthenticationRequired);
    expect(refreshes()).toBe(before);
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: false, credential: null });
    expect(row.lastError).toMatch(/can no longer be decrypted.*ENCRYPTION_KEYS/);
  });

  it('a refresh that fails transiently keeps the tokens and uses the still-valid one, then cools down', async () => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, 4 * MINUTE);
    epic.failNext('token', { status: 503 }, { count: 1, grantType: 'refresh_token' });
    const before = refreshes();
    const cipher = (await connectionRow(t, orgId)).credential!.accessTokenEnc;

    await fhir.forOrganization(orgId).read('Patient', SEED.camila); // succeeds with the current token

    let row = await connectionRow(t, orgId);
    expect(row.credential).toMatchObject({ version: 1, accessTokenEnc: cipher });
    expect(row.isConnected).toBe(true);
    expect(row.lastError).toMatch(/HTTP 503/);
    expect(row.lastErrorAt).not.toBeNull();
    expect(eventsFor(orgId)).toContain(ConnectionEvents.Degraded);

    // A burst during the cooldown does not ask the token endpoint again.
    await Promise.all(
      Array.from({ length: 5 }, () => fhir.forOrganization(orgId).read('Patient', SEED.camila)),
    );
    expect(refreshes()).toBe(before + 1);

    // Once the token has expired, the cooldown fails fast as "unavailable"; the tokens stay.
    await setStoredExpiry(t, orgId, -MINUTE);
    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    expect(error.kind).toBe(FhirErrorKind.Unavailable);
    expect(refreshes()).toBe(before + 1);
    row = await connectionRow(t, orgId);
    expect(row.credential).toMatchObject({ version: 1, accessTokenEnc: cipher });
  });

  it.each<[string, FakeEpicFault]>([
    ['a timeout', { delayMs: 1300 }],
    ['a dropped connection', { drop: true }],
    ['HTTP 500', { status: 500 }],
    ['a 429 with an OAuth error body (a rate limiter)', { oauthError: 'invalid_grant', status: 429 }],
    ['an invalid_request (a problem to fix, not dead tokens)', { oauthError: 'invalid_request' }],
  ])('a refresh lost to %s, with the token expired, keeps the tokens', async (_name, fault) => {
    const { orgId } = await connect();
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.failNext('token', fault, { count: 1, grantType: 'refresh_token' });
    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    expect(error.kind).toBe(FhirErrorKind.Unavailable);
    const row = await connectionRow(t, orgId);
    expect(row.credential).toMatchObject({ version: 1 });
    expect(row.isConnected).toBe(true);
    expect(row.lastError).toMatch(/token endpoint|tokens were kept/);
  });

  it('retries transient FHIR failures and succeeds', async () => {
    const { orgId } = await connect();
    epic.failNext('fhir', { status: 503, retryAfter: null });
    epic.failNext('fhir', { drop: true });
    const fhirBefore = epic.calls('fhir');
    const patient = await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    expect(patient.id).toBe(SEED.camila);
    expect(epic.calls('fhir') - fhirBefore).toBe(3);
    expect((await connectionRow(t, orgId)).lastError).toBeNull();
  });

  it('honours Retry-After before retrying', async () => {
    const { orgId } = await connect();
    epic.failNext('fhir', { status: 429, retryAfter: 1 });
    const fhirBefore = epic.calls('fhir');
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    const [first, second] = epic.requests('fhir').slice(fhirBefore);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once when Retry-After is longer than the longest wait', async () => {
    const { orgId } = await connect();
    epic.failNext('fhir', { status: 503, retryAfter: 120 });
    const fhirBefore = epic.calls('fhir');
    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    expect(error).toMatchObject({ kind: FhirErrorKind.Unavailable, status: 503, retryAfterSeconds: 120 });
    expect(epic.calls('fhir') - fhirBefore).toBe(1);
  });

  it('records lastError when retries run out, keeps the connection, and clears it on the next success', async () => {
    const { orgId } = await connect();
    epic.failNext('fhir', { status: 502 }, 3); // first try and both retries
    const error = await failure(fhir.forOrganization(orgId).read('Patient', SEED.camila));
    expect(error).toMatchObject({ kind: FhirErrorKind.Unavailable, status: 502 });
    expect(error.message).toMatch(/HTTP 502 \(3 attempts\)/);
    let row = await connectionRow(t, orgId);
    expect(row.isConnected).toBe(true);
    expect(row.credential).toMatchObject({ version: 1 });
    expect(row.lastError).toMatch(/HTTP 502/);

    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: true, lastError: null, lastErrorAt: null });
    expect(eventsFor(orgId)).toEqual(
      expect.arrayContaining([ConnectionEvents.Degraded, ConnectionEvents.Restored]),
    );
  });

  it('surfaces FHIR errors with the OperationOutcome text, without touching the connection', async () => {
    const { orgId } = await connect();
    const error = await failure(fhir.forOrganization(orgId).read('Patient', 'does-not-exist'));
    expect(error.kind).toBe(FhirErrorKind.Request);
    expect(error.status).toBe(404);
    expect(error.operationOutcome?.resourceType).toBe('OperationOutcome');
    expect(error.message).toMatch(/^Epic answered HTTP 404: .+/);
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: true, lastError: null });
    expect(row.credential).not.toBeNull();
  });

  it('refuses malformed types and ids before calling Epic', async () => {
    const { orgId } = await connect();
    const fhirBefore = epic.calls('fhir');
    const client = fhir.forOrganization(orgId);
    expect((await failure(client.read('Patient', '../Observation/x'))).kind).toBe(FhirErrorKind.Request);
    expect((await failure(client.read('patient?x' as 'Patient', 'a'))).kind).toBe(FhirErrorKind.Request);
    expect(epic.calls('fhir')).toBe(fhirBefore);
  });

  it('searches and follows paging when asked', async () => {
    const { orgId } = await connect();
    const client = fhir.forOrganization(orgId);
    const first = await client.search('Observation', { patient: SEED.camila, _count: 3 });
    expect(first.entry).toHaveLength(3);
    expect(first.link?.some((l) => l.relation === 'next')).toBe(true);
    const all = await client.search('Observation', { patient: SEED.camila, _count: 3 }, { allPages: true });
    expect(all.entry!.length).toBe(first.total);
    expect(all.entry!.length).toBeGreaterThan(3);
    expect(new Set(all.entry!.map((e) => e.resource!.id)).size).toBe(all.entry!.length);
  });

  it('reads the CapabilityStatement', async () => {
    const { orgId } = await connect();
    const statement = await fhir.forOrganization(orgId).capabilities();
    expect(statement).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
  });

  it('says "not connected" for an organization without a connection', async () => {
    const error = await failure(fhir.forOrganization('00000000-0000-4000-8000-000000000000').capabilities());
    expect(error.kind).toBe(FhirErrorKind.NotConnected);
  });

  it('logs what happened with ids only: never a token, code or secret', async () => {
    const { orgId } = await connect();
    epic.expireAccessTokens();
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    const { orgId: deadOrg } = await connect();
    await setStoredExpiry(t, deadOrg, -MINUTE);
    epic.rejectRefresh(1);
    await failure(fhir.forOrganization(deadOrg).read('Patient', SEED.camila));

    const log = readFileSync(process.env.LOG_FILE!, 'utf8');
    expect(log).toContain(`Requested new access token for organization ${orgId}`);
    expect(log).toContain('Epic API call failed with 401, attempting refresh');
    expect(log).toContain(`Refresh failed for organization ${deadOrg}: invalid_grant`);
    for (const request of epic.requests('token')) {
      const body = request.responseBody as Record<string, string> | undefined;
      for (const value of [
        body?.access_token,
        body?.refresh_token,
        request.form?.refresh_token,
        request.form?.code,
      ]) {
        if (value) expect(log).not.toContain(value);
      }
    }
  });
});
