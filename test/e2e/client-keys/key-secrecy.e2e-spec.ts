import { readFileSync } from 'node:fs';

import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { connectedOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

/** The members of a private JWK that must never leave the database, where they are encrypted. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;

/**
 * Private key material never appears in the JWK Set, pages, JSON or logs: the real private values
 * (decrypted here from the database) are searched for in everything the app shows and writes.
 */
describe('signing keys stay private', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let base: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    base = await listenOnLoopback(t);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  it('in the JWK Set, the admin pages, the JSON API and the log', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic, {
      jwksUrl: `${base}/.well-known/jwks-sandbox.json`,
    });
    const root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
    await root.agent
      .post('/admin/keys/rotate')
      .type('form')
      .send({ _csrf: root.csrf, environment: 'sandbox' })
      .expect(303);

    const rows = await t.dataSource.query<{ id: string; private_key_enc: string }[]>(
      'SELECT id, private_key_enc FROM client_signing_key WHERE private_key_enc IS NOT NULL',
    );
    expect(rows.length).toBe(6); // RS384 and ES384: active in each environment's set, next in the sandbox's
    const cipher = t.app.get(SecretCipherService);
    const secrets = rows.flatMap((row) => {
      const jwk = JSON.parse(cipher.decrypt(row.private_key_enc, `client_signing_key:${row.id}`)) as Record<
        string,
        string
      >;
      return [
        row.private_key_enc,
        ...PRIVATE_MEMBERS.map((m) => jwk[m]).filter((v) => typeof v === 'string'),
      ];
    });
    expect(secrets.length).toBeGreaterThanOrEqual(4 + 2 * 6 + 2); // each RSA key has six private members

    const shown = [
      (await t.http().get('/.well-known/jwks.json').expect(200)).text,
      (await t.http().get('/.well-known/jwks-sandbox.json').expect(200)).text,
      (await root.agent.get('/admin/keys').expect(200)).text,
      (await root.agent.get('/admin').expect(200)).text,
      (await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200)).text,
      (await admin.agent.get(`/api/organizations/${orgId}`).expect(200)).text,
      (await admin.agent.get('/fhir/epic-registration').query({ org: orgId }).expect(200)).text,
      (await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200)).text,
      (await root.agent.get('/api/audit-events').expect(200)).text,
    ];
    // pino writes the file asynchronously: give it a moment to flush.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const log = readFileSync(process.env.LOG_FILE!, 'utf8');
    expect(log).toContain('signing key'); // the key steps were logged (by kid)
    for (const text of [...shown, log]) {
      for (const secret of secrets) expect(text.includes(secret)).toBe(false);
      expect(text).not.toMatch(/PRIVATE KEY/);
    }
  });
});
