import { validateEnv } from 'src/config/validate-env';
import { GATEWAY_CONCURRENCY_RANGE, GATEWAY_RATE_RANGE } from 'src/config/env.schema';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** A root admin overrides an organization's gateway limits; its admins can read them. */
describe('gateway limits per organization', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ env: { GATEWAY_RATE_PER_SECOND: '20', GATEWAY_CONCURRENCY: '10' } });
  });
  afterAll(() => t.close());

  it('starts at the defaults, takes a root override, validates it, restores the default on null, audits', async () => {
    const factory = new TestFactory(t);
    const org = await factory.organization();
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
    const path = `/api/organizations/${org.id}/gateway-limits`;
    const put = (body: object) => root.agent.put(path).set('x-csrf-token', root.csrf).send(body);

    expect((await admin.agent.get(path).expect(200)).body).toEqual({ ratePerSecond: 20, concurrency: 10 });
    expect((await put({ ratePerSecond: 50 }).expect(200)).body).toEqual({
      ratePerSecond: 50,
      concurrency: 10,
    });
    expect((await admin.agent.get(path).expect(200)).body).toEqual({ ratePerSecond: 50, concurrency: 10 });

    const bad = await put({ ratePerSecond: 0, concurrency: 'many' }).expect(400);
    expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(Object.keys(bad.body.fields).sort()).toEqual(['concurrency', 'ratePerSecond']);

    expect((await put({ ratePerSecond: null }).expect(200)).body).toEqual({
      ratePerSecond: 20,
      concurrency: 10,
    });
    await admin.agent.put(path).set('x-csrf-token', admin.csrf).send({ ratePerSecond: 99 }).expect(403);

    const events = await t.dataSource.query<{ detail: { after: { ratePerSecond: number | null } } }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'gateway-limits.changed'
        ORDER BY occurred_at`,
      [org.id],
    );
    expect(events.map((e) => e.detail.after.ratePerSecond)).toEqual([50, null]);
  });

  it('takes an override exactly where the configuration takes the default: the same ranges', async () => {
    const factory = new TestFactory(t);
    const org = await factory.organization();
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const path = `/api/organizations/${org.id}/gateway-limits`;
    const configTakes = (key: string, value: number): boolean => {
      try {
        validateEnv({ ...process.env, [key]: String(value) });
        return true;
      } catch (error) {
        if (!String(error).includes(key)) throw error;
        return false;
      }
    };
    for (const [field, key, range] of [
      ['ratePerSecond', 'GATEWAY_RATE_PER_SECOND', GATEWAY_RATE_RANGE],
      ['concurrency', 'GATEWAY_CONCURRENCY', GATEWAY_CONCURRENCY_RANGE],
    ] as const) {
      for (const value of [range.min - 1, range.min, range.max, range.max + 1]) {
        const res = await root.agent
          .put(path)
          .set('x-csrf-token', root.csrf)
          .send({ [field]: value });
        expect([field, value, res.status]).toEqual([field, value, configTakes(key, value) ? 200 : 400]);
      }
    }
  });
});
