import { ACTOR_NAMES, Actor, ActorName, makeActors } from 'test/factories/actors';
import { TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** Org A's id for request bodies (set in beforeAll). */
let orgAForBody = '';
interface Route {
  method: Method;
  /** Called per request so that destructive routes get a target of their own. */
  path: (ids: { orgA: string; orgB: string; fresh: () => Promise<string> }) => Promise<string> | string;
  body?: () => object;
  form?: boolean;
  expected: Record<ActorName, number>;
}

// 401 = JSON sign-in required, 303 = browser sent to /login, 403 = role refused, 404 = other org hidden.
const jsonRoutes: Route[] = [
  {
    method: 'get',
    path: ({ orgA }) => `/api/organizations/${orgA}/gateway-limits`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'put',
    path: ({ orgA }) => `/api/organizations/${orgA}/gateway-limits`,
    body: () => ({ ratePerSecond: 30 }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/api/organizations/${orgA}/api-keys`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: ({ orgA }) => `/api/organizations/${orgA}/api-keys`,
    body: () => ({ name: `Matrix ${Math.random().toString(36).slice(2)}` }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 201, orgAdminB: 404, rootAdmin: 201 },
  },
  {
    method: 'get',
    path: () => '/api/organizations',
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 200, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: () => '/api/organizations',
    body: () => ({ name: `Matrix ${Math.random().toString(36).slice(2)}` }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 201 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/api/organizations/${orgA}`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'patch',
    path: ({ orgA }) => `/api/organizations/${orgA}`,
    body: () => ({ name: 'Org A' }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 200 },
  },
  {
    method: 'delete',
    path: ({ fresh }) => fresh(),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 204 },
  },
  {
    method: 'put',
    path: ({ orgA }) => `/api/organizations/${orgA}/epic-client`,
    body: () => ({ clientId: 'matrix-client', environment: 'sandbox' }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/api/organizations/${orgA}/admins`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: ({ orgA }) => `/api/organizations/${orgA}/admins`,
    body: () => ({ email: `admin-${Math.random().toString(36).slice(2)}@example.org` }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 201 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/api/organizations/${orgA}/audit-events`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: () => '/api/audit-events',
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/fhir/epic-status?org=${orgA}`,
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: () => '/fhir/epic-disconnect',
    body: () => ({ org: orgAForBody }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: () => '/api/notifications',
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 200, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: () => '/api/notifications/unread-count',
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 200, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: () => '/api/notifications/read-all',
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 200, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: () => '/fhir/test-epic-connection',
    body: () => ({ org: orgAForBody }),
    expected: { anonymous: 401, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
];

const htmlRoutes: Route[] = [
  {
    method: 'get',
    // 502: the PUT epic-client rows above registered org A against Epic's real sandbox, which is
    // unreachable here, so allowed users get the discovery-failure page (no redirect).
    path: ({ orgA }) => `/fhir/epic-authorize?org=${orgA}`,
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 502, orgAdminB: 404, rootAdmin: 502 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/connect_epic/${orgA}`,
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'get',
    // Public, and refused for everyone without a valid iss and launch: never a redirect.
    path: () => '/fhir/epic-launch',
    expected: { anonymous: 400, patient: 400, provider: 400, orgAdminA: 400, orgAdminB: 400, rootAdmin: 400 },
  },
  {
    method: 'get',
    path: () => '/launch/provider/00000000-0000-4000-8000-000000000000',
    expected: { anonymous: 303, patient: 403, provider: 404, orgAdminA: 403, orgAdminB: 403, rootAdmin: 403 },
  },
  {
    method: 'get',
    path: () => '/admin/notifications',
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 200, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: () => '/admin',
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 200 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/admin/organizations/${orgA}`,
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: () => '/admin/organizations',
    form: true,
    body: () => ({ name: `Form ${Math.random().toString(36).slice(2)}` }),
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 303 },
  },
  {
    method: 'post',
    path: ({ orgA }) => `/admin/organizations/${orgA}/admins`,
    form: true,
    body: () => ({ email: `form-${Math.random().toString(36).slice(2)}@example.org` }),
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 201 },
  },
  {
    method: 'post',
    path: ({ orgA }) => `/admin/organizations/${orgA}/rename`,
    form: true,
    body: () => ({ name: 'Org A' }),
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 303 },
  },
  {
    method: 'get',
    path: ({ orgA }) => `/admin/epic/registration?org=${orgA}`,
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 200, orgAdminB: 404, rootAdmin: 200 },
  },
  {
    method: 'post',
    path: async ({ fresh }) => `${await fresh()}/delete`.replace('/api/', '/admin/'),
    form: true,
    expected: { anonymous: 303, patient: 403, provider: 403, orgAdminA: 403, orgAdminB: 403, rootAdmin: 303 },
  },
];

/** "GET /api/organizations/:orgA" from the route's path function, for test names. */
function label(route: Route): string {
  const text = route.path
    .toString()
    .replace(/^.*=>\s*/s, '')
    .replace(/[`'"]/g, '')
    .replace(/\$\{(\w+)\}/g, ':$1')
    .replace(/async|await|fresh\(\)|\$\{|\}|\.replace.*$/g, '');
  return `${route.method.toUpperCase()} ${text.includes('/') ? text : '/…/:freshOrg'}`;
}

describe('authorization matrix: every admin route × every kind of user', () => {
  let t: TestApp;
  let actors: Record<ActorName, Actor>;
  let ids: { orgA: string; orgB: string; fresh: () => Promise<string> };

  beforeAll(async () => {
    t = await createTestApp();
    const factory = new TestFactory(t);
    const [a, b] = await Promise.all([factory.organization(), factory.organization()]);
    actors = await makeActors(t, factory, a.id, b.id);
    orgAForBody = a.id;
    ids = {
      orgA: a.id,
      orgB: b.id,
      fresh: async () => `/api/organizations/${(await factory.organization()).id}`,
    };
  });
  afterAll(() => t.close());

  const cases = [...jsonRoutes, ...htmlRoutes].flatMap((route) =>
    ACTOR_NAMES.map((actor) => ({ route, actor, expected: route.expected[actor] })),
  );

  it.each(cases.map((c) => [label(c.route), c.actor, c.expected, c]))(
    '%s as %s → %i',
    async (_label, _actor, expected, { route, actor }) => {
      const { agent, csrf } = actors[actor];
      const path = await route.path(ids);
      let req = agent[route.method](path).set('x-csrf-token', csrf);
      if (route.form) req = req.type('form').set('Accept', 'text/html');
      const res = route.body ? await req.send(route.body()) : await req;
      expect(res.status).toBe(expected);
      if (expected === 303 && actor === 'anonymous') expect(res.headers.location).toMatch(/^\/login\?next=/);
    },
  );
});
