import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import {
  CALLBACK,
  connectedOrganization,
  connectionRow,
  registeredOrganization,
  SignedIn,
  setStoredExpiry,
} from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

type Status = Record<string, unknown> & { state: string };

/**
 * The rules every status JSON keeps, whatever the state: each field follows the one state, so none
 * can contradict another (as `state: "expired"` with `expired: false` once did).
 */
function expectConsistent(status: Status): void {
  expect(status.configured).toBe(status.state !== 'not_configured');
  expect(status.expired).toBe(status.state === 'expired');
  expect(status.connected).toBe(['connected', 'expiring', 'error'].includes(status.state));
  if (status.connected) {
    expect(typeof status.expiresAt).toBe('string');
  } else {
    expect(status).toMatchObject({
      expiresAt: null,
      refreshable: false,
      scopes: [],
      patientId: null,
      endsAt: null,
    });
  }
}

/** `/fhir/epic-status` in each state, over HTTP, with the real database and the fake Epic. */
describe('the status JSON is consistent in every state', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    fhir = t.app.get(FhirClientService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  const status = async (admin: SignedIn, orgId: string): Promise<Status> => {
    const res = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    const body = res.body as Status;
    expectConsistent(body);
    return body;
  };

  it('connected: a live, refreshable token', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    const body = await status(admin, orgId);
    const row = await connectionRow(t, orgId);
    expect(body).toEqual({
      state: 'connected',
      configured: true,
      connected: true,
      expired: false,
      expiresAt: new Date(row.credential!.expiresAt).toISOString(),
      refreshable: true,
      endsAt: null,
      scopes: expect.arrayContaining(['openid', 'user/Patient.read']),
      patientId: null,
      lastSync: null,
      lastError: null,
      lastErrorAt: null,
      callbackUrl: CALLBACK,
      serverName: 'Epic',
      isEpic: true,
    });
  });

  it('expiring: no refresh token and less time left than the warning window', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic, { persistentAccess: false });
    await setStoredExpiry(t, orgId, 10 * MINUTE); // EXPIRY_WARNING_MINUTES is 30
    const body = await status(admin, orgId);
    const expiresAt = new Date((await connectionRow(t, orgId)).credential!.expiresAt).toISOString();
    expect(body).toMatchObject({
      state: 'expiring',
      connected: true,
      expired: false,
      refreshable: false,
      expiresAt,
      endsAt: expiresAt,
      lastError: null,
    });
  });

  it('expired after a terminal refresh failure: the credential is gone, token_expiry kept, and every field agrees', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.rejectRefresh(1);
    await expect(fhir.forOrganization(orgId).read('Patient', SEED.camila)).rejects.toThrow(/invalid_grant/);

    // The situation that once contradicted itself: no credential, but token_expiry and the reason are kept.
    const row = await connectionRow(t, orgId);
    expect(row.credential).toBeNull();
    expect(row.tokenExpiry).not.toBeNull();

    const body = await status(admin, orgId);
    expect(body).toEqual({
      state: 'expired',
      configured: true,
      connected: false,
      expired: true,
      expiresAt: null,
      refreshable: false,
      endsAt: null,
      scopes: [],
      patientId: null,
      lastSync: null, // nothing was ever read
      lastError: expect.stringMatching(/invalid_grant/),
      lastErrorAt: expect.any(String),
      callbackUrl: CALLBACK,
      serverName: 'Epic',
      isEpic: true,
    });
  });

  it('error: a transient failure keeps the tokens, still connected', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    epic.failNext('fhir', { status: 502 }, 3); // the first try and both retries
    await expect(fhir.forOrganization(orgId).read('Patient', SEED.camila)).rejects.toThrow(/502/);
    const body = await status(admin, orgId);
    expect(body).toMatchObject({
      state: 'error',
      connected: true,
      expired: false,
      refreshable: true,
      lastError: expect.stringMatching(/HTTP 502/),
      lastErrorAt: expect.any(String),
    });
    expect(new Date(body.expiresAt as string).getTime()).toBeGreaterThan(Date.now());
  });

  it('not connected: registered but never connected, and after a disconnect', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    const never = await status(admin, orgId);
    expect(never).toMatchObject({
      state: 'not_connected',
      configured: true,
      connected: false,
      expired: false,
    });

    const connected = await connectedOrganization(t, epic);
    const res = await connected.admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', connected.admin.csrf)
      .send({ org: connected.orgId })
      .expect(200);
    expectConsistent(res.body as Status);
    expect(res.body).toMatchObject({
      state: 'not_connected',
      connected: false,
      expired: false,
      expiresAt: null,
    });
    expect(await status(connected.admin, connected.orgId)).toEqual(res.body);
  });

  it('not configured: no client registered', async () => {
    const factory = new TestFactory(t);
    const org = await factory.organization();
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
    expect(await status(admin, org.id)).toMatchObject({
      state: 'not_configured',
      configured: false,
      connected: false,
      expired: false,
    });
  });
});
