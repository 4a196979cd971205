import { AuditService } from 'src/audit/audit.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { connectedOrganization, connectionRow } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Dates in audit details are stored as ISO 8601 strings (`expiresAt` was once stored as `{}`). */
describe('audit details with dates', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  it("stores a connection's expiresAt as the ISO string of the token's end, and serves it so", async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    const [row] = await t.dataSource.query<{ detail: Record<string, unknown> }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.connect'`,
      [orgId],
    );
    const credential = (await connectionRow(t, orgId)).credential!;
    expect(row.detail.expiresAt).toMatch(ISO);
    expect(row.detail.expiresAt).toBe(new Date(credential.expiresAt).toISOString());

    const events = await admin.agent.get(`/api/organizations/${orgId}/audit-events`).expect(200);
    const connect = (events.body as { action: string; detail: Record<string, unknown> }[]).find(
      (e) => e.action === 'epic.connect',
    );
    expect(connect?.detail.expiresAt).toBe(row.detail.expiresAt);
  });

  it('converts dates at any depth, for every caller', async () => {
    const factory = new TestFactory(t);
    const org = await factory.organization();
    const at = new Date('2026-11-23T12:34:56.789Z');
    await t.app.get(AuditService).record({
      actor: null,
      organization: { id: org.id, name: org.name },
      action: 'test.dates',
      detail: { at, nested: { list: [at, { at }] }, invalid: new Date(Number.NaN) },
    });
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const events = await root.agent.get(`/api/organizations/${org.id}/audit-events`).expect(200);
    const event = (events.body as { action: string; detail: unknown }[]).find(
      (e) => e.action === 'test.dates',
    );
    expect(event?.detail).toEqual({
      at: '2026-11-23T12:34:56.789Z',
      nested: { list: ['2026-11-23T12:34:56.789Z', { at: '2026-11-23T12:34:56.789Z' }] },
      invalid: null,
    });
  });
});
