import { createLocalJWKSet, jwtVerify, SignJWT, type JWK } from 'jose';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { SIGNING_ALGS, type RotationStepResult, type SigningAlg } from 'src/client-keys/client-keys.types';
import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { Role } from 'src/users/user.types';

import { TestFactory, TestUser } from 'test/factories';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const OVERLAP = 3600;
const DAY_MS = 86_400_000;
const ENV = { KEY_ROTATION_OVERLAP_SECONDS: String(OVERLAP), KEY_ROTATION_INTERVAL_DAYS: '90' };

const plus = (date: Date, seconds: number): Date => new Date(date.getTime() + seconds * 1000);

interface KeyRow {
  kid: string;
  environment: string;
  alg: SigningAlg;
  state: string;
  private_key_enc: string | null;
  created_at: Date;
  activated_at: Date | null;
  retiring_at: Date | null;
  retired_at: Date | null;
}

interface AuditRow {
  action: string;
  actor_user_id: string | null;
  actor_label: string | null;
  detail: Record<string, unknown>;
}

function keyRows(t: TestApp): Promise<KeyRow[]> {
  return t.dataSource.query<KeyRow[]>(
    `SELECT kid, environment, alg, state, private_key_enc, created_at, activated_at, retiring_at, retired_at
       FROM client_signing_key ORDER BY created_at, environment, alg`,
  );
}

function auditRows(t: TestApp, action: string): Promise<AuditRow[]> {
  return t.dataSource.query<AuditRow[]>(
    `SELECT action, actor_user_id, actor_label, detail FROM audit_event WHERE action = $1`,
    [action],
  );
}

async function published(t: TestApp): Promise<JWK[]> {
  const res = await t.http().get('/.well-known/jwks.json').expect(200);
  return (res.body as { keys: JWK[] }).keys;
}

function sign(key: { kid: string; alg: SigningAlg; key: CryptoKey }): Promise<string> {
  return new SignJWT({ iss: 'client', sub: 'client' })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuedAt()
    .setExpirationTime('4m')
    .sign(key.key);
}

const stepsOf = (results: RotationStepResult[] | null, step: RotationStepResult['step']) =>
  (results ?? []).filter((r) => r.step === step);
/** The steps taken in the production set (the one at /.well-known/jwks.json these tests follow). */
const inProduction = (results: RotationStepResult[] | null) =>
  (results ?? []).filter((r) => r.environment === 'production');

/**
 * The whole rotation of the production set, driven by calling tick() and startRotation() with the
 * clock (the sets are independent: environments.e2e-spec.ts rotates one beside the other).
 */
describe('signing key rotation', () => {
  let t: TestApp;
  let keys: ClientKeysService;
  let rotation: KeyRotationService;
  let admin: TestUser;

  beforeAll(async () => {
    t = await createTestApp({ env: ENV });
    keys = t.app.get(ClientKeysService);
    rotation = t.app.get(KeyRotationService);
    admin = await new TestFactory(t).user(Role.RootAdmin, null);
  });
  afterAll(() => t.close());

  it('publishes a next key, promotes it after the overlap, and retires the old one after another', async () => {
    const T0 = new Date();
    const before = Object.fromEntries(
      await Promise.all(
        SIGNING_ALGS.map(async (alg) => [alg, await keys.signingKey(alg, 'production')] as const),
      ),
    ) as Record<SigningAlg, Awaited<ReturnType<ClientKeysService['signingKey']>>>;
    const oldKids = SIGNING_ALGS.map((alg) => before[alg].kid);

    // 1. Start (the console's action): a next key per alg, published while the old key still signs.
    const nexts = await rotation.startRotation(admin.id, 'production', T0);
    expect(nexts.map((k) => [k.alg, k.state]).sort()).toEqual([
      ['ES384', 'next'],
      ['RS384', 'next'],
    ]);
    for (const view of nexts) {
      expect(view.createdAt).toEqual(T0);
      expect(view).toMatchObject({ nextStep: 'promote', nextStepAt: plus(T0, OVERLAP) });
    }
    const newKids = SIGNING_ALGS.map((alg) => nexts.find((k) => k.alg === alg)!.kid);
    expect((await published(t)).map((k) => k.kid).sort()).toEqual([...oldKids, ...newKids].sort());
    for (const alg of SIGNING_ALGS) {
      expect((await keys.signingKey(alg, 'production')).kid).toBe(before[alg].kid);
    }
    const publishedAudit = await auditRows(t, 'client-key.published');
    expect(publishedAudit).toHaveLength(2);
    for (const row of publishedAudit) {
      expect(row).toMatchObject({ actor_user_id: admin.id, actor_label: admin.email });
      expect(newKids).toContain(row.detail.kid);
      expect(SIGNING_ALGS).toContain(row.detail.alg);
      expect(row.detail.environment).toBe('production');
    }

    // Asking again while a rotation is under way changes nothing.
    const again = await rotation.startRotation(admin.id, 'production', plus(T0, 60));
    expect(again.map((k) => k.kid).sort()).toEqual([...newKids].sort());
    expect(await auditRows(t, 'client-key.published')).toHaveLength(2);

    // An assertion signed just before the switch: it must still verify after it.
    const signedByOld = await Promise.all(SIGNING_ALGS.map((alg) => sign(before[alg])));

    // 2. One second short of the overlap: nothing moves.
    const rowsBefore = await keyRows(t);
    expect(await rotation.tick(plus(T0, OVERLAP - 1))).toEqual([]);
    expect(await keyRows(t)).toEqual(rowsBefore);

    // At the overlap: the next key signs, the old one is retiring and still published.
    const T1 = plus(T0, OVERLAP);
    const promoted = await rotation.tick(T1);
    expect(
      stepsOf(promoted, 'promote')
        .map((s) => [s.alg, s.kid, s.previousKid])
        .sort(),
    ).toEqual(SIGNING_ALGS.map((alg, i) => [alg, newKids[i], oldKids[i]]).sort());
    expect(promoted).toHaveLength(2);
    for (const [i, alg] of SIGNING_ALGS.entries()) {
      expect((await keys.signingKey(alg, 'production')).kid).toBe(newKids[i]);
    }
    const afterPromotion = await keyRows(t);
    for (const [i] of SIGNING_ALGS.entries()) {
      expect(afterPromotion.find((r) => r.kid === oldKids[i])).toMatchObject({
        state: 'retiring',
        retiring_at: T1,
        private_key_enc: expect.stringMatching(/^v1\./),
      });
      expect(afterPromotion.find((r) => r.kid === newKids[i])).toMatchObject({
        state: 'active',
        activated_at: T1,
      });
    }
    const jwksDuringRetirement = await published(t);
    expect(jwksDuringRetirement.map((k) => k.kid).sort()).toEqual([...oldKids, ...newKids].sort());
    for (const jwt of signedByOld) {
      await expect(jwtVerify(jwt, createLocalJWKSet({ keys: jwksDuringRetirement }))).resolves.toBeDefined();
    }
    const promotedAudit = await auditRows(t, 'client-key.promoted');
    expect(promotedAudit.map((r) => [r.detail.alg, r.detail.kid, r.detail.previousKid]).sort()).toEqual(
      SIGNING_ALGS.map((alg, i) => [alg, newKids[i], oldKids[i]]).sort(),
    );
    expect(promotedAudit.every((r) => r.actor_user_id === null && r.actor_label === 'system')).toBe(true);

    // The console sees what is next: retirement after the overlap, a new rotation after the interval.
    const views = await keys.list();
    for (const [i] of SIGNING_ALGS.entries()) {
      expect(views.find((v) => v.kid === oldKids[i])).toMatchObject({
        state: 'retiring',
        nextStep: 'retire',
        nextStepAt: plus(T1, OVERLAP),
      });
      expect(views.find((v) => v.kid === newKids[i])).toMatchObject({
        state: 'active',
        nextStep: 'rotate',
        nextStepAt: new Date(T1.getTime() + 90 * DAY_MS),
      });
    }

    // 3. After another overlap: the old key is retired, unpublished, and its private part wiped.
    expect(await rotation.tick(plus(T1, OVERLAP - 1))).toEqual([]);
    const T2 = plus(T1, OVERLAP);
    const retired = await rotation.tick(T2);
    expect(
      stepsOf(retired, 'retire')
        .map((s) => s.kid)
        .sort(),
    ).toEqual([...oldKids].sort());
    expect(retired).toHaveLength(2);
    const finalRows = await keyRows(t);
    for (const kid of oldKids) {
      expect(finalRows.find((r) => r.kid === kid)).toMatchObject({
        state: 'retired',
        retired_at: T2,
        private_key_enc: null,
      });
    }
    const finalJwks = await published(t);
    expect(finalJwks.map((k) => k.kid).sort()).toEqual([...newKids].sort());
    for (const jwt of signedByOld) {
      await expect(jwtVerify(jwt, createLocalJWKSet({ keys: finalJwks }))).rejects.toThrow();
    }
    const retiredAudit = await auditRows(t, 'client-key.retired');
    expect(retiredAudit.map((r) => r.detail.kid).sort()).toEqual([...oldKids].sort());
    expect((await keys.list()).filter((v) => v.state === 'retired').map((v) => v.nextStep)).toEqual([
      null,
      null,
    ]);

    // 4. The schedule starts the next rotation by itself once the active key is 90 days old.
    //    (The sandbox set, untouched until then, has its own 90 days, from its first key.)
    const due = new Date(T1.getTime() + 90 * DAY_MS);
    expect(inProduction(await rotation.tick(new Date(due.getTime() - 1000)))).toEqual([]);
    const started = inProduction(await rotation.tick(due));
    expect(started.map((s) => [s.step, s.alg]).sort()).toEqual([
      ['rotate', 'ES384'],
      ['rotate', 'RS384'],
    ]);
    const scheduledAudit = (await auditRows(t, 'client-key.published')).filter(
      (r) => r.detail.reason === 'schedule' && r.detail.environment === 'production',
    );
    expect(scheduledAudit.map((r) => r.detail.kid).sort()).toEqual(started.map((s) => s.kid).sort());
    expect(scheduledAudit.every((r) => r.actor_user_id === null)).toBe(true);
    expect((await published(t)).map((k) => k.kid).sort()).toEqual(
      [...newKids, ...started.map((s) => s.kid)].sort(),
    );
    // … and it is promoted by the schedule after the overlap too.
    const nextPromotion = inProduction(await rotation.tick(plus(due, OVERLAP)));
    expect(
      stepsOf(nextPromotion, 'promote')
        .map((s) => s.previousKid)
        .sort(),
    ).toEqual([...newKids].sort());
  });

  it('the schema holds one active and one next key per environment and algorithm, and no retired key with a private part', async () => {
    await expect(
      t.dataSource.query(
        `UPDATE client_signing_key SET state = 'active', activated_at = now(), retiring_at = NULL WHERE state = 'retiring'`,
      ),
    ).rejects.toThrow(/uq_client_signing_key_active_env_alg/);
    await expect(
      t.dataSource.query(
        `INSERT INTO client_signing_key (kid, environment, alg, state, public_jwk, private_key_enc)
         VALUES ('dup-next', 'sandbox', 'ES384', 'next', '{}', 'x'), ('dup-next-2', 'sandbox', 'ES384', 'next', '{}', 'x')`,
      ),
    ).rejects.toThrow(/uq_client_signing_key_next_env_alg/);
    // One per environment: a next key of the same algorithm in each set is fine (rolled back here).
    const runner = t.dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      await runner.query(
        `INSERT INTO client_signing_key (kid, environment, alg, state, public_jwk, private_key_enc)
         VALUES ('next-s', 'sandbox', 'ES384', 'next', '{}', 'x'), ('next-p', 'production', 'ES384', 'next', '{}', 'x')`,
      );
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    await expect(
      t.dataSource.query(
        `INSERT INTO client_signing_key (kid, environment, alg, state, public_jwk, private_key_enc)
         VALUES ('no-env', 'staging', 'ES384', 'next', '{}', 'x')`,
      ),
    ).rejects.toThrow(/ck_client_signing_key_environment/);
    await expect(
      t.dataSource.query(
        `INSERT INTO client_signing_key (kid, alg, state, public_jwk, private_key_enc)
         VALUES ('no-env', 'ES384', 'next', '{}', 'x')`,
      ),
    ).rejects.toThrow(/null value in column "environment"/);
    await expect(
      t.dataSource.query(`UPDATE client_signing_key SET private_key_enc = NULL WHERE state = 'active'`),
    ).rejects.toThrow(/ck_client_signing_key_private/);
    await expect(
      t.dataSource.query(
        `UPDATE client_signing_key SET state = 'retired', retired_at = now() WHERE state = 'active'`,
      ),
    ).rejects.toThrow(/ck_client_signing_key_private/);
  });
});

describe('signing key rotation across instances', () => {
  let t: TestApp;
  let sibling: TestApp;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    // Several instances starting at once on an empty table: each makes sure the keys exist.
    const saved = { ...process.env };
    try {
      [t, sibling] = await Promise.all([
        createTestApp({ databaseUrl, env: ENV }),
        createTestApp({ databaseUrl, env: ENV }),
      ]);
    } finally {
      process.env = saved;
    }
  });
  afterAll(async () => {
    await t.close();
    await sibling.close();
  });

  it('creates exactly one active key per environment and algorithm when instances boot together', async () => {
    const rows = await keyRows(t);
    const each = [
      ['production', 'ES384', 'active'],
      ['production', 'RS384', 'active'],
      ['sandbox', 'ES384', 'active'],
      ['sandbox', 'RS384', 'active'],
    ];
    expect(rows.map((r) => [r.environment, r.alg, r.state]).sort()).toEqual(each);
    const created = await auditRows(t, 'client-key.created');
    expect(created.map((r) => [r.detail.environment, r.detail.alg, 'active']).sort()).toEqual(each);
    for (const environment of ['sandbox', 'production'] as const) {
      for (const alg of SIGNING_ALGS) {
        expect((await t.app.get(ClientKeysService).signingKey(alg, environment)).kid).toBe(
          (await sibling.app.get(ClientKeysService).signingKey(alg, environment)).kid,
        );
      }
    }
  });

  it('promotes once when ticks run at the same time on both instances', async () => {
    const T0 = new Date();
    const here = t.app.get(KeyRotationService);
    const there = sibling.app.get(KeyRotationService);
    const nexts = await here.startRotation(null, 'production', T0);
    expect(nexts).toHaveLength(2);

    const at = plus(T0, OVERLAP);
    const results = await Promise.all([here.tick(at), there.tick(at), here.tick(at), there.tick(at)]);

    // A tick still running in the same process is not overlapped.
    expect(results[2]).toBeNull();
    expect(results[3]).toBeNull();
    const promotions = results.flatMap((r) => stepsOf(r, 'promote'));
    expect(promotions.map((p) => p.kid).sort()).toEqual(nexts.map((n) => n.kid).sort());
    const rows = await keyRows(t);
    expect(
      rows
        .filter((r) => r.state === 'active' && r.environment === 'production')
        .map((r) => r.kid)
        .sort(),
    ).toEqual(nexts.map((n) => n.kid).sort());
    expect(rows.filter((r) => r.state === 'retiring')).toHaveLength(2);
    expect(await auditRows(t, 'client-key.promoted')).toHaveLength(2);
    // The instance that did not promote signs with the new key at once.
    for (const alg of SIGNING_ALGS) {
      expect((await sibling.app.get(ClientKeysService).signingKey(alg, 'production')).kid).toBe(
        nexts.find((n) => n.alg === alg)!.kid,
      );
    }
  });
});

describe('signing key rotation with KEY_ROTATION_INTERVAL_DAYS=0', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ env: { ...ENV, KEY_ROTATION_INTERVAL_DAYS: '0' } });
  });
  afterAll(() => t.close());

  it('never starts a rotation by itself, but still takes one started by hand', async () => {
    const rotation = t.app.get(KeyRotationService);
    const now = new Date();
    expect(await rotation.tick(new Date(now.getTime() + 3650 * DAY_MS))).toEqual([]);
    expect((await t.app.get(ClientKeysService).list()).map((v) => v.nextStep)).toEqual([
      null,
      null,
      null,
      null,
    ]);

    const nexts = await rotation.startRotation(null, 'production', now);
    const promoted = await rotation.tick(plus(now, OVERLAP));
    expect(
      stepsOf(promoted, 'promote')
        .map((s) => s.kid)
        .sort(),
    ).toEqual(nexts.map((n) => n.kid).sort());
  });
});
