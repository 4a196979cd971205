import { connectedOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const METRICS_TOKEN = 'metrics-token-tEsTsEcReT-prod-0123456789';
const HEALTH_TOKEN = 'health-token-tEsTsEcReT-prod-0123456789';
/** What a production deployment must set (ENCRYPTION_KEYS and SESSION_SECRET come from test/setup/env.ts). */
const PRODUCTION = { NODE_ENV: 'production', PUBLIC_BASE_URL: 'https://connect.example.test' };

/**
 * In production `/metrics` (organization ids, token expiries) and the `/health`
 * detail (connections by state, signing key ids) are served only with their bearer tokens; with
 * no token configured they answer 404. `/health/live` and `/health/ready` stay open for probes.
 */
describe('operational endpoints in production', () => {
  let epic: FakeEpic;
  let bare: TestApp;
  let tokens: TestApp;
  let development: TestApp;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    epic = await startFakeEpic();
    bare = await createTestApp({ databaseUrl, env: PRODUCTION });
    tokens = await createTestApp({ databaseUrl, env: { ...PRODUCTION, METRICS_TOKEN, HEALTH_TOKEN } });
    development = await createTestApp({ databaseUrl });
    // A connected organization: what /metrics would list (its id and its token's expiry).
    await connectedOrganization(development, epic);
  });
  afterAll(async () => {
    await epic.close();
    await Promise.all([bare.close(), tokens.close(), development.close()]);
  });

  it('without METRICS_TOKEN and HEALTH_TOKEN: /metrics and the /health detail are 404, whatever is sent', async () => {
    for (const path of ['/metrics', '/health']) {
      const res = await bare.http().get(path).expect(404);
      expect(res.text).not.toContain('epic_connect');
      expect(res.text).not.toContain('signingKeys');
      await bare.http().get(path).set('authorization', `Bearer ${METRICS_TOKEN}`).expect(404);
    }
  });

  it('keeps /health/live and /health/ready open for probes, tokens or not', async () => {
    for (const t of [bare, tokens]) {
      await t.http().get('/health/live').expect(200, { status: 'ok' });
      const ready = await t.http().get('/health/ready').expect(200);
      expect(Object.keys(ready.body.info as object)).toEqual(['database']);
    }
  });

  it('with the tokens: 401 (and WWW-Authenticate: Bearer) without the right one, the data with it', async () => {
    for (const [path, token, other] of [
      ['/metrics', METRICS_TOKEN, HEALTH_TOKEN],
      ['/health', HEALTH_TOKEN, METRICS_TOKEN],
    ] as const) {
      const missing = await tokens.http().get(path).expect(401);
      expect(missing.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(missing.text).not.toContain('epic_connect');
      await tokens.http().get(path).set('authorization', 'Bearer wrong').expect(401);
      await tokens.http().get(path).set('authorization', token).expect(401); // the scheme is required
      await tokens.http().get(path).set('authorization', `Bearer ${other}`).expect(401); // one token each
      await tokens.http().get(path).set('authorization', `Bearer ${token}x`).expect(401); // a longer one
      await tokens.http().get(path).set('authorization', `Bearer ${token}`).expect(200);
      await tokens.http().get(path).set('authorization', `bearer ${token}`).expect(200); // RFC 7235 §2.1
    }
    const metrics = await tokens.http().get('/metrics').set('authorization', `Bearer ${METRICS_TOKEN}`);
    expect(metrics.text).toMatch(
      /epic_connect_access_token_seconds_to_expiry\{organization="[0-9a-f-]{36}"\}/,
    );
    const health = await tokens.http().get('/health').set('authorization', `Bearer ${HEALTH_TOKEN}`);
    for (const environment of ['sandbox', 'production']) {
      expect(health.body.details.signingKeys[environment].active).toEqual({
        RS384: expect.any(String),
        ES384: expect.any(String),
      });
    }
  });

  it('outside production, with no token configured, both stay open (development and tests)', async () => {
    await development.http().get('/metrics').expect(200);
    await development.http().get('/health').expect(200);
  });
});
