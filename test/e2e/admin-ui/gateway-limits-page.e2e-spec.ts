import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';

import { TestFactory } from 'test/factories';
import { Actor, makeActors } from 'test/factories/actors';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * The organization page's FHIR gateway limits over HTTP: everyone who may open the page sees the
 * limits in force and where they come from; a root admin sets an override or goes back to the
 * defaults with its form (the PUT route's service, checks and audit).
 */
describe('Organization page: gateway limits', () => {
  let t: TestApp;
  let orgA: string;
  let orgB: string;
  let actors: Awaited<ReturnType<typeof makeActors>>;
  let root: Actor;

  beforeAll(async () => {
    t = await createTestApp({ env: { GATEWAY_RATE_PER_SECOND: '20', GATEWAY_CONCURRENCY: '10' } });
    const factory = new TestFactory(t);
    [orgA, orgB] = (await Promise.all([factory.organization(), factory.organization()])).map((o) => o.id);
    actors = await makeActors(t, factory, orgA, orgB);
    root = actors.rootAdmin;
  });
  afterAll(() => t.close());

  const page = (orgId = orgA) => `/admin/organizations/${orgId}`;
  const api = (orgId = orgA) => `/api/organizations/${orgId}/gateway-limits`;
  const post = (actor: Actor, form: Record<string, string>, orgId = orgA) =>
    actor.agent
      .post(`${page(orgId)}/gateway-limits`)
      .type('form')
      .send({ _csrf: actor.csrf, ...form });
  const override = async (orgId = orgA) =>
    (
      await t.dataSource.query<{ rate_per_second: number | null; concurrency: number | null }[]>(
        'SELECT rate_per_second, concurrency FROM gateway_limits WHERE organization_id = $1',
        [orgId],
      )
    )[0] ?? null;
  const changes = async (orgId = orgA) =>
    (
      await t.dataSource.query<{ detail: { after: object } }[]>(
        `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'gateway-limits.changed'
          ORDER BY occurred_at`,
        [orgId],
      )
    ).map((e) => e.detail.after);

  it('shows the defaults from config, with the form for a root admin only', async () => {
    const res = await root.agent.get(page()).expect(200);
    expect(res.text).toContain(
      '<dd id="gateway-rate" data-source="default">20 requests per second (default, from config)</dd>',
    );
    expect(res.text).toContain(
      '<dd id="gateway-concurrency" data-source="default">10 requests in flight (default, from config)</dd>',
    );
    expect(res.text).toMatch(
      new RegExp(
        `<form method="post" action="/admin/organizations/${orgA}/gateway-limits" id="gateway-limits-form" novalidate>\\s*` +
          '<input type="hidden" name="_csrf" value="[^"]+">',
      ),
    );
    expect(res.text).not.toContain('id="gateway-limits-defaults"'); // nothing to go back from

    const admin = await actors.orgAdminA.agent.get(page()).expect(200);
    expect(admin.text).toContain('20 requests per second (default, from config)');
    expect(admin.text).not.toContain('id="gateway-limits-form"');
    expect(admin.text).toContain('Only a root admin can change them.');
  });

  it('sets an override: the page and the JSON route see it at once, audited; then back to the defaults', async () => {
    const res = await post(root, { ratePerSecond: '50', concurrency: '' }).expect(303);
    expect(res.headers.location).toBe(`${page()}#gateway-limits`);
    expect(await override()).toEqual({ rate_per_second: 50, concurrency: null });
    expect((await actors.orgAdminA.agent.get(api()).expect(200)).body).toEqual({
      ratePerSecond: 50,
      concurrency: 10,
    });
    expect(await t.app.get(GatewayThrottleService).limits(orgA)).toEqual({
      ratePerSecond: 50,
      concurrency: 10,
    });

    const after = await root.agent.get(page()).expect(200);
    expect(after.text).toContain('Gateway limits of ');
    expect(after.text).toContain(
      '<dd id="gateway-rate" data-source="override">50 requests per second (override; the default is 20)</dd>',
    );
    expect(after.text).toContain('data-source="default">10 requests in flight (default, from config)');
    expect(after.text).toContain('id="ratePerSecond" name="ratePerSecond" value="50"');
    expect(after.text).toContain('id="gateway-limits-defaults"');
    const seen = await actors.orgAdminA.agent.get(page()).expect(200);
    expect(seen.text).toContain('50 requests per second (override; the default is 20)');

    await post(root, { ratePerSecond: '50', concurrency: '4' }).expect(303);
    expect((await root.agent.get(api()).expect(200)).body).toEqual({ ratePerSecond: 50, concurrency: 4 });

    await post(root, { ratePerSecond: '50', concurrency: '4', useDefaults: '1' }).expect(303);
    expect(await override()).toBeNull();
    expect((await root.agent.get(api()).expect(200)).body).toEqual({ ratePerSecond: 20, concurrency: 10 });
    expect((await root.agent.get(page()).expect(200)).text).toContain(
      'data-source="default">20 requests per second (default, from config)',
    );
    expect(await changes()).toEqual([
      { ratePerSecond: 50, concurrency: null },
      { ratePerSecond: 50, concurrency: 4 },
      { ratePerSecond: null, concurrency: null },
    ]);
  });

  it('keeps an override equal to the default: shown as an override, and saving the form as shown keeps it', async () => {
    const orgId = (await new TestFactory(t).organization()).id;
    await post(root, { ratePerSecond: '20', concurrency: '' }, orgId).expect(303);
    expect(await override(orgId)).toEqual({ rate_per_second: 20, concurrency: null });

    const shown = await root.agent.get(page(orgId)).expect(200);
    expect(shown.text).toContain(
      '<dd id="gateway-rate" data-source="override">20 requests per second (override, equal to the default)</dd>',
    );
    expect(shown.text).toContain('data-source="default">10 requests in flight (default, from config)');
    expect(shown.text).toContain('id="gateway-limits-defaults"'); // there is an override to go back from
    const field = (name: string): string =>
      new RegExp(`id="${name}" name="${name}" value="([^"]*)"`).exec(shown.text)?.[1] ?? 'missing';
    expect(field('ratePerSecond')).toBe('20');
    expect(field('concurrency')).toBe('');

    // Save the form exactly as the page filled it in: the override stays, nothing new is audited.
    const before = await changes(orgId);
    await post(
      root,
      { ratePerSecond: field('ratePerSecond'), concurrency: field('concurrency') },
      orgId,
    ).expect(303);
    expect(await override(orgId)).toEqual({ rate_per_second: 20, concurrency: null });
    expect(await changes(orgId)).toEqual(before);
    const seen = await actors.orgAdminA.agent.get(page()).expect(200); // another organization: untouched
    expect(seen.text).not.toContain('equal to the default');
  });

  it('shows what was wrong beside each field, keeps what was typed, and changes nothing', async () => {
    await post(root, { ratePerSecond: '30', concurrency: '' }).expect(303);
    const before = await changes();
    const res = await post(root, { ratePerSecond: '0', concurrency: 'many' }).expect(400);
    expect(res.text).toContain('The limits were not changed: correct the fields marked below.');
    expect(res.text).toContain(
      '<p class="field-error" id="ratePerSecond-error">ratePerSecond must be a whole number of requests per second from 1 to 10000, or null for the default</p>',
    );
    expect(res.text).toContain(
      'id="concurrency-error">concurrency must be a whole number of requests in flight',
    );
    expect(res.text).toContain('id="ratePerSecond" name="ratePerSecond" value="0"');
    expect(res.text).toContain('id="concurrency" name="concurrency" value="many"');
    expect(res.text).toContain('30 requests per second (override; the default is 20)'); // still in force
    await post(root, { ratePerSecond: '2.5', concurrency: '1001' }).expect(400);
    expect(await override()).toEqual({ rate_per_second: 30, concurrency: null });
    expect(await changes()).toEqual(before);
  });

  it('refuses a form without the CSRF token, an org admin, and anyone else', async () => {
    const before = await override();
    await root.agent.post(`${page()}/gateway-limits`).type('form').send({ ratePerSecond: '99' }).expect(403);
    await root.agent
      .post(`${page()}/gateway-limits`)
      .type('form')
      .send({ ratePerSecond: '99', _csrf: 'nope' })
      .expect(403);
    await post(actors.orgAdminA, { ratePerSecond: '99' }).expect(403);
    await post(actors.orgAdminB, { ratePerSecond: '99' }).expect(403);
    await post(actors.orgAdminB, { ratePerSecond: '99' }, orgB).expect(403);
    await post(actors.provider, { ratePerSecond: '99' }).expect(403);
    await post(actors.anonymous, { ratePerSecond: '99' }).expect(303); // to the sign-in page
    expect(await override()).toEqual(before);
    expect(await override(orgB)).toBeNull();
    // Another organization's page stays a 404 for an org admin, limits and all.
    await actors.orgAdminB.agent.get(page()).expect(404);
  });
});
