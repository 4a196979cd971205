import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import {
  connectedOrganization,
  registeredOrganization,
  setStoredExpiry,
  SignedIn,
} from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

interface Layer {
  ok: boolean;
  message: string;
  durationMs: number;
  steps: { name: string; ok: boolean; message: string; durationMs: number }[];
}

describe('POST /fhir/test-epic-connection (two layers: configuration, live)', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  const test = async (admin: SignedIn, orgId: string) => {
    const res = await admin.agent
      .post('/fhir/test-epic-connection')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    return res.body as {
      ok: boolean;
      organizationId: string;
      testedAt: string;
      configuration: Layer;
      live: Layer;
    };
  };
  const stepsOf = (layer: Layer) => layer.steps.map((s) => [s.name, s.ok]);
  const auditOf = async (orgId: string) =>
    t.dataSource.query<{ outcome: string; detail: Record<string, unknown> }[]>(
      `SELECT outcome, detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.connection-test'
        ORDER BY occurred_at`,
      [orgId],
    );

  it('passes both layers for a connected organization, with timings, and audits the result', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    const result = await test(admin, orgId);

    expect(result.ok).toBe(true);
    expect(stepsOf(result.configuration)).toEqual([
      ['registration', true],
      ['discovery', true],
      ['credentials', true],
      ['authorize-url', true],
    ]);
    expect(stepsOf(result.live)).toEqual([
      ['token', true],
      ['metadata', true],
      ['patient', true],
    ]);
    for (const step of [...result.configuration.steps, ...result.live.steps]) {
      expect(step.durationMs).toBeGreaterThanOrEqual(0);
      expect(step.message.length).toBeGreaterThan(10);
    }
    expect(result.live.steps[1].message).toMatch(/FHIR 4\.0\.1/);
    expect(await auditOf(orgId)).toEqual([
      { outcome: 'success', detail: { configuration: true, live: true } },
    ]);
    // Nothing secret in the answer.
    const token = epic
      .requests('token')
      .filter((r) => r.status === 200)
      .at(-1)!.responseBody as Record<string, string>;
    expect(token.access_token).toBeTruthy();
    expect(JSON.stringify(result)).not.toContain(token.access_token);
  });

  it('says what to do when no client is registered', async () => {
    const org = await new TestFactory(t).organization();
    const admin = await signIn(t, await new TestFactory(t).user(Role.OrgAdmin, org.id));
    const result = await test(admin, org.id);

    expect(result.ok).toBe(false);
    expect(result.configuration.ok).toBe(false);
    expect(result.configuration.steps).toEqual([
      expect.objectContaining({
        name: 'registration',
        ok: false,
        message: expect.stringMatching(/client ID/),
      }),
    ]);
    expect(result.live.ok).toBe(false);
    expect(result.live.steps[0].message).toMatch(/Connect to Epic/);
    expect(await auditOf(org.id)).toEqual([
      { outcome: 'failure', detail: { configuration: false, live: false, failedStep: 'registration' } },
    ]);
  });

  it('reports discovery down in the configuration layer', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    epic.failNext('smart-configuration', { status: 503 });
    epic.failNext('metadata', { status: 503 });

    const result = await test(admin, orgId);

    expect(result.ok).toBe(false);
    expect(stepsOf(result.configuration)).toEqual([
      ['registration', true],
      ['discovery', false],
    ]);
    expect(result.configuration.message).toMatch(/503/);
  });

  it('reports "not connected" in the live layer, with how to connect', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    const result = await test(admin, orgId);

    expect(result.configuration.ok).toBe(true);
    expect(result.live).toMatchObject({ ok: false });
    expect(stepsOf(result.live)).toEqual([['token', false]]);
    expect(result.live.message).toMatch(/Not connected to Epic yet.*Connect to Epic/);
  });

  it('refreshes an expired, refreshable token during the live test', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    await setStoredExpiry(t, orgId, -60_000);
    epic.expireAccessTokens();
    const realRefreshes = () =>
      epic
        .requests('token', { grantType: 'refresh_token' })
        .filter((r) => !r.form?.refresh_token?.startsWith('epic-connect-credentials-check')).length;
    const before = realRefreshes();

    const result = await test(admin, orgId);

    expect(result.ok).toBe(true);
    expect(realRefreshes()).toBe(before + 1);
  });

  it('reports an expired token that cannot be refreshed, and what to do', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic, { persistentAccess: false });
    await setStoredExpiry(t, orgId, -60_000);

    const result = await test(admin, orgId);

    expect(result.ok).toBe(false);
    expect(result.configuration.ok).toBe(true);
    expect(stepsOf(result.live)).toEqual([
      ['token', true],
      ['metadata', false],
    ]);
    expect(result.live.message).toMatch(/no refresh token.*Re-authenticate/);
  });

  it('requires the CSRF token, and tells a root admin that an organization id is malformed', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    await admin.agent.post('/fhir/test-epic-connection').send({ org: orgId }).expect(403);
    const root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
    const bad = await root.agent
      .post('/fhir/test-epic-connection')
      .set('x-csrf-token', root.csrf)
      .send({ org: 'not-a-uuid' })
      .expect(400);
    expect(JSON.stringify(bad.body)).toMatch(/org must be an organization id/);
  });
});
