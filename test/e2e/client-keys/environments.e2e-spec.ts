import { decodeProtectedHeader } from 'jose';
import { DataSource } from 'typeorm';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { dataSourceOptions } from 'src/database/data-source';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import {
  connectedOrganization,
  registeredOrganization,
  setStoredExpiry,
  SignedIn,
} from 'test/factories/epic-connection';
import { FakeEpic, FakeEpicRequest, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

const OVERLAP = 300;
const PRODUCTION_PATH = '/.well-known/jwks.json';
const SANDBOX_PATH = '/.well-known/jwks-sandbox.json';
type Environment = 'sandbox' | 'production';

const kidsOf = (body: unknown): string[] =>
  (body as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();

/**
 * Epic asks for separate JWK Set URLs for non-production and production
 * (https://fhir.epic.com/Documentation?docId=oauth2, "Hosting a JWK Set URL"): a sandbox
 * organization's assertions are signed by a key published only at the sandbox URL, a production
 * organization's by one published only at the production URL, and each set rotates on its own.
 * The fake Epic verifies every assertion by fetching the JWK Set URL its client was registered with.
 */
describe('a signing key set per environment', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let base: string;
  let root: SignedIn;
  const url = (environment: Environment) =>
    `${base}${environment === 'sandbox' ? SANDBOX_PATH : PRODUCTION_PATH}`;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({
        env: { KEY_ROTATION_OVERLAP_SECONDS: String(OVERLAP), REFRESH_COOLDOWN_SECONDS: '0' },
      }),
      startFakeEpic(),
    ]);
    base = await listenOnLoopback(t);
    root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const published = async (environment: Environment): Promise<string[]> =>
    kidsOf(
      (
        await t
          .http()
          .get(environment === 'sandbox' ? SANDBOX_PATH : PRODUCTION_PATH)
          .expect(200)
      ).body,
    );
  const stored = (environment: Environment, states = ['next', 'active', 'retiring']) =>
    t.dataSource.query<{ kid: string; alg: string; state: string }[]>(
      `SELECT kid, alg, state FROM client_signing_key WHERE environment = $1 AND state = ANY($2) ORDER BY kid`,
      [environment, states],
    );
  const activeKid = async (environment: Environment, alg: string): Promise<string> =>
    (await stored(environment, ['active'])).find((k) => k.alg === alg)!.kid;
  const tokenCalls = (clientId: string): FakeEpicRequest[] =>
    epic.requests('token').filter((r) => r.clientId === clientId);
  const assertionKid = (request: FakeEpicRequest): string =>
    decodeProtectedHeader(request.form!.client_assertion).kid!;

  it('publishes each set at its own URL: both algorithms, and none of the other set’s keys', async () => {
    const sandbox = await t.http().get(SANDBOX_PATH).expect(200);
    const production = await t.http().get(PRODUCTION_PATH).expect(200);
    for (const res of [sandbox, production]) {
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['cache-control']).toBe('public, max-age=150');
      expect((res.body as { keys: { alg: string }[] }).keys.map((k) => k.alg).sort()).toEqual([
        'ES384',
        'RS384',
      ]);
    }
    const sandboxKids = kidsOf(sandbox.body);
    const productionKids = kidsOf(production.body);
    expect(sandboxKids.filter((kid) => productionKids.includes(kid))).toEqual([]);
    expect(sandboxKids).toEqual((await stored('sandbox')).map((k) => k.kid));
    expect(productionKids).toEqual((await stored('production')).map((k) => k.kid));

    const keys = t.app.get(ClientKeysService);
    expect(keys.jwksUrl('sandbox')).toBe(`http://localhost:3000${SANDBOX_PATH}`);
    expect(keys.jwksUrl('production')).toBe(`http://localhost:3000${PRODUCTION_PATH}`);
  });

  it('signs a sandbox organization’s assertions with a key only the sandbox URL publishes', async () => {
    const { clientId } = await connectedOrganization(t, epic, {
      environment: 'sandbox',
      jwksUrl: url('sandbox'),
    });
    const [exchange] = tokenCalls(clientId);
    expect(exchange).toMatchObject({ grantType: 'authorization_code', status: 200 });
    const kid = assertionKid(exchange);
    expect(kid).toBe(await activeKid('sandbox', 'RS384'));
    expect(await published('sandbox')).toContain(kid);
    expect(await published('production')).not.toContain(kid);
    expect(epic.jwksFetches()).toContain(url('sandbox'));
  });

  it('signs a production organization’s assertions with a key only the production URL publishes', async () => {
    const { clientId } = await connectedOrganization(t, epic, {
      environment: 'production',
      jwksUrl: url('production'),
      assertionAlg: 'ES384',
    });
    const [exchange] = tokenCalls(clientId);
    expect(exchange).toMatchObject({ grantType: 'authorization_code', status: 200 });
    const kid = assertionKid(exchange);
    expect(kid).toBe(await activeKid('production', 'ES384'));
    expect(await published('production')).toContain(kid);
    expect(await published('sandbox')).not.toContain(kid);
    expect(epic.jwksFetches()).toContain(url('production'));
  });

  it.each([
    ['sandbox', 'production'],
    ['production', 'sandbox'],
  ] as const)(
    'a %s organization whose client was registered with the %s URL is refused by Epic',
    async (environment, other) => {
      const { orgId, admin, clientId } = await registeredOrganization(t, epic, {
        environment,
        jwksUrl: url(other),
        backend: {},
        scopes: 'system/Patient.read',
      });
      await admin.agent.post(`/connect_epic/${orgId}`).type('form').send({ _csrf: admin.csrf }).expect(303);
      const [grant] = tokenCalls(clientId);
      const kid = assertionKid(grant);
      expect(kid).toBe(await activeKid(environment, 'RS384'));
      expect(grant.status).toBe(400);
      expect(grant.rejection).toBe(`no registered key with kid ${kid} verifies the assertion`);
      const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
      expect(status.body).toMatchObject({ connected: false });

      // Registered with the URL of its own environment, the same client is accepted.
      epic.registerClient({ clientId, audience: 'backend', jwksUrl: url(environment), mappedToUser: true });
      await admin.agent.post(`/connect_epic/${orgId}`).type('form').send({ _csrf: admin.csrf }).expect(303);
      expect(tokenCalls(clientId).at(-1)).toMatchObject({ grantType: 'client_credentials', status: 200 });
    },
  );

  it('the registration page and GET /fhir/epic-registration give the URL of the organization’s environment', async () => {
    for (const environment of ['sandbox', 'production'] as const) {
      const { orgId, admin } = await registeredOrganization(t, epic, {
        environment,
        jwksUrl: url(environment),
      });
      const expected = `http://localhost:3000${environment === 'sandbox' ? SANDBOX_PATH : PRODUCTION_PATH}`;
      const info = await admin.agent.get('/fhir/epic-registration').query({ org: orgId }).expect(200);
      expect(info.body).toMatchObject({ environment, tokenAuthMethod: 'private_key_jwt', jwksUrl: expected });

      const page = (await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200)).text;
      expect(page).toContain(`<code id="jwks-url" data-jwks-url>${expected}</code>`);
      expect(page).toContain(`<strong data-jwks-environment>${environment}</strong>`);
      // Both URLs, for the Environment field before it is saved (registration.js).
      expect(page).toContain(`data-jwks-sandbox="http://localhost:3000${SANDBOX_PATH}"`);
      expect(page).toContain(`data-jwks-production="http://localhost:3000${PRODUCTION_PATH}"`);
    }
  });

  it('the keys page shows both sets, each with its URL, copy button, keys and own rotation', async () => {
    const page = (await root.agent.get('/admin/keys').expect(200)).text;
    for (const environment of ['sandbox', 'production'] as const) {
      const section = sectionOf(page, environment);
      expect(section).toContain(
        `<code id="jwks-url-${environment}">http://localhost:3000${environment === 'sandbox' ? SANDBOX_PATH : PRODUCTION_PATH}</code>`,
      );
      expect(section).toContain(
        `<button type="button" class="copy" data-copy="jwks-url-${environment}" aria-label="Copy the ${environment} JWK Set URL">`,
      );
      expect(section).toContain(`<input type="hidden" name="environment" value="${environment}">`);
      const other = environment === 'sandbox' ? 'production' : 'sandbox';
      for (const { kid } of await stored(environment)) expect(section).toContain(`<tr data-kid="${kid}"`);
      for (const { kid } of await stored(other)) expect(section).not.toContain(kid);
    }
    expect(sectionOf(page, 'sandbox')).toContain('Non-Production JWK Set URL');
    expect(sectionOf(page, 'production')).toContain('Production JWK Set URL');
  });

  it('rotating one set publishes, promotes and retires its keys only; the other set signs on untouched', async () => {
    const productionBefore = await stored('production');
    const sandboxBefore = await stored('sandbox');
    const { orgId: productionOrg, clientId: productionClient } = await connectedOrganization(t, epic, {
      environment: 'production',
      jwksUrl: url('production'),
    });
    const productionKid = await activeKid('production', 'RS384');

    // A rotation posted without a set, or with an unknown one, changes nothing.
    await root.agent.post('/admin/keys/rotate').type('form').send({ _csrf: root.csrf }).expect(400);
    await root.agent
      .post('/admin/keys/rotate')
      .type('form')
      .send({ _csrf: root.csrf, environment: 'staging' })
      .expect(400);
    expect(await stored('sandbox')).toEqual(sandboxBefore);

    // The sandbox set's Start rotation: next keys in the sandbox JWK Set only.
    const startedAt = Date.now();
    await root.agent
      .post('/admin/keys/rotate')
      .type('form')
      .send({ _csrf: root.csrf, environment: 'sandbox' })
      .expect(303);
    const sandboxNext = (await stored('sandbox', ['next'])).map((k) => k.kid);
    expect(sandboxNext).toHaveLength(2);
    expect(await published('sandbox')).toEqual([...sandboxBefore.map((k) => k.kid), ...sandboxNext].sort());
    expect(await stored('production')).toEqual(productionBefore);
    expect(await published('production')).toEqual(productionBefore.map((k) => k.kid));
    const page = (await root.agent.get('/admin/keys').expect(200)).text;
    expect(page).toMatch(/<p class="alert success">Published new sandbox signing keys: /);
    expect(sectionOf(page, 'sandbox')).toContain('A sandbox rotation is under way');
    expect(sectionOf(page, 'production')).not.toContain('rotation is under way');
    const audit = await t.dataSource.query<{ detail: { kid: string; environment: string } }[]>(
      `SELECT detail FROM audit_event WHERE action = 'client-key.published'`,
    );
    expect(audit.map((a) => [a.detail.environment, a.detail.kid]).sort()).toEqual(
      sandboxNext.map((kid) => ['sandbox', kid]).sort(),
    );

    // After the overlap the schedule promotes the sandbox keys; production has nothing due.
    const rotation = t.app.get(KeyRotationService);
    const promoted = await rotation.tick(new Date(startedAt + OVERLAP * 1000 + 1000));
    expect(promoted!.map((s) => [s.environment, s.step]).sort()).toEqual([
      ['sandbox', 'promote'],
      ['sandbox', 'promote'],
    ]);
    expect((await stored('sandbox', ['active'])).map((k) => k.kid)).toEqual(sandboxNext);
    expect(await stored('production')).toEqual(productionBefore);

    // After another overlap the old sandbox keys are retired; production still has nothing due.
    await rotation.tick(new Date(startedAt + 2 * OVERLAP * 1000 + 2000));
    expect(await stored('production')).toEqual(productionBefore);
    expect((await stored('sandbox', ['retired'])).map((k) => k.kid)).toEqual(sandboxBefore.map((k) => k.kid));
    expect(await published('sandbox')).toEqual(sandboxNext);

    // The production organization still signs with the production key it had, and Epic accepts it.
    await setStoredExpiry(t, productionOrg, -60_000);
    epic.expireAccessTokens();
    const patient = await t.app
      .get(FhirClientService)
      .forOrganization(productionOrg)
      .read('Patient', SEED.camila);
    expect(patient.id).toBe(SEED.camila);
    const refresh = tokenCalls(productionClient).at(-1)!;
    expect(refresh).toMatchObject({ grantType: 'refresh_token', status: 200 });
    expect(assertionKid(refresh)).toBe(productionKid);
  });

  it('/health reports both sets', async () => {
    const res = await t.http().get('/health').expect(200);
    for (const environment of ['sandbox', 'production'] as const) {
      expect(res.body.details.signingKeys[environment]).toMatchObject({
        active: {
          RS384: await activeKid(environment, 'RS384'),
          ES384: await activeKid(environment, 'ES384'),
        },
        lateSteps: [],
      });
    }
  });
});

/** The keys page's section of one environment's set. */
function sectionOf(page: string, environment: Environment): string {
  const start = page.indexOf(`<section class="card key-set" id="set-${environment}"`);
  expect(start).toBeGreaterThan(-1);
  return page.slice(start, page.indexOf('</section>', start));
}

/**
 * An existing deployment had one key set, at `/.well-known/jwks.json`, registered at Epic for
 * every organization. After the upgrade those keys are the production set, still at that URL (a
 * production connection needs nothing re-registered), and a new sandbox set is made at start-up.
 */
describe('upgrading a deployment that had one key set', () => {
  it('keeps the existing keys as the production set at the old URL, and makes a new sandbox set', async () => {
    const databaseUrl = await freshDatabaseUrl();
    const first = await createTestApp({ databaseUrl });
    const oldKids = kidsOf((await first.http().get(PRODUCTION_PATH).expect(200)).body);
    await first.close();

    // Back to the schema before this change (its down migration keeps the production keys, in the
    // shape an old deployment stored its one set), then up again, as an upgrade runs it.
    const ds = new DataSource(dataSourceOptions(databaseUrl, 1));
    await ds.initialize();
    try {
      const applied = async (): Promise<string[]> =>
        (await ds.query<{ name: string }[]>('SELECT name FROM typeorm_migrations')).map((r) => r.name);
      while ((await applied()).includes('SigningKeysPerEnvironment1764040000000')) {
        await ds.undoLastMigration();
      }
      const columns = await ds.query<{ column_name: string }[]>(
        `SELECT column_name FROM information_schema.columns WHERE table_name = 'client_signing_key'`,
      );
      expect(columns.map((c) => c.column_name)).not.toContain('environment');
      const old = await ds.query<{ kid: string; state: string }[]>(
        'SELECT kid, state FROM client_signing_key ORDER BY kid',
      );
      expect(old).toEqual(oldKids.map((kid) => ({ kid, state: 'active' })));
      await ds.runMigrations();
      const upgraded = await ds.query<{ kid: string; environment: string }[]>(
        'SELECT kid, environment FROM client_signing_key ORDER BY kid',
      );
      expect(upgraded).toEqual(oldKids.map((kid) => ({ kid, environment: 'production' })));
    } finally {
      await ds.destroy();
    }

    const upgraded = await createTestApp({ databaseUrl });
    try {
      // The URL registered at Epic still publishes, and production still signs with, the same keys.
      expect(kidsOf((await upgraded.http().get(PRODUCTION_PATH).expect(200)).body)).toEqual(oldKids);
      const keys = upgraded.app.get(ClientKeysService);
      for (const alg of ['RS384', 'ES384'] as const) {
        expect(oldKids).toContain((await keys.signingKey(alg, 'production')).kid);
      }
      // The sandbox set is new, made at start-up, and published at its own URL only.
      const sandboxKids = kidsOf((await upgraded.http().get(SANDBOX_PATH).expect(200)).body);
      expect(sandboxKids).toHaveLength(2);
      expect(sandboxKids.filter((kid) => oldKids.includes(kid))).toEqual([]);
      const created = await upgraded.dataSource.query<{ detail: { kid: string; environment: string } }[]>(
        `SELECT detail FROM audit_event WHERE action = 'client-key.created' AND detail->>'environment' = 'sandbox'`,
      );
      // (The first boot's sandbox keys are in the audit too: the way back down dropped them.)
      expect(created.map((c) => c.detail.kid)).toEqual(expect.arrayContaining(sandboxKids));
    } finally {
      await upgraded.close();
    }
  });
});
