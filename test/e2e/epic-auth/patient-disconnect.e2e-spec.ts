import TestAgent from 'supertest/lib/agent';

import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * A patient's Disconnect of one of their connected accounts revokes its tokens at the server that
 * issued them where it offers revocation (RFC 7009), as an organization's disconnect does.
 */
describe("patient's Disconnect", () => {
  let t: TestApp;
  /** Advertises and serves an RFC 7009 revocation endpoint. */
  let revoking: FakeEpic;
  /** Advertises none (as Epic: docs/epic-and-smart.md §6). */
  let plain: FakeEpic;
  const orgs = new Map<FakeEpic, string>();

  beforeAll(async () => {
    [t, revoking, plain] = await Promise.all([
      createTestApp(),
      startFakeEpic({ revocationEndpoint: true }),
      startFakeEpic(),
    ]);
    for (const epic of [revoking, plain]) {
      const { orgId } = await registeredOrganization(t, epic, {
        audience: 'patient',
        scopes: 'patient/Patient.read patient/Observation.read',
      });
      orgs.set(epic, orgId);
    }
  });
  afterAll(async () => {
    await Promise.all([revoking.close(), plain.close()]);
    await t.close();
  });

  /** The patient connects at `epic` in a new browser; returns it and the tokens Epic issued. */
  async function connect(
    epic: FakeEpic,
    patientId: string,
  ): Promise<{ agent: TestAgent; accessToken: string; refreshToken: string }> {
    const agent = t.agent();
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [orgs.get(epic)],
    );
    const start = await agent.get('/fhir/epic-connect').query({ org: slug }).expect(303);
    const back = await epic.authorizeAsUser(new URL(start.headers.location), {
      user: { kind: 'patient', patientId },
    });
    const callback = new URL(back.location!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    await agent.get(callback.pathname + callback.search).expect(303);
    const token = epic.requests('token').at(-1)!.responseBody as Record<string, string>;
    return { agent, accessToken: token.access_token, refreshToken: token.refresh_token };
  }

  /** Presses Disconnect on the patient's page; returns the credential's id. */
  async function disconnect(agent: TestAgent): Promise<string> {
    const page = await agent.get('/launch/patient').expect(200);
    const match = /action="\/launch\/patient\/credentials\/([^"/]+)\/disconnect"/.exec(page.text)!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
    await agent
      .post(`/launch/patient/credentials/${match[1]}/disconnect`)
      .type('form')
      .send({ _csrf: csrf })
      .expect(303);
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('No Epic account is connected');
    return match[1];
  }

  const credentialRows = async (id: string): Promise<number> =>
    (
      await t.dataSource.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM epic_credential WHERE id = $1',
        [id],
      )
    )[0].n;

  const auditDetail = async (id: string): Promise<Record<string, unknown>> => {
    const rows = await t.dataSource.query<{ detail: Record<string, unknown> }[]>(
      `SELECT detail FROM audit_event WHERE action = 'epic.patient-disconnect' AND detail->>'credential' = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    return rows[0].detail;
  };

  it('revokes the refresh and the access token at the server, then deletes the credential', async () => {
    const { agent, accessToken, refreshToken } = await connect(revoking, SEED.camila);
    const before = revoking.calls('revoke');
    const id = await disconnect(agent);
    const sent = revoking.requests('revoke').slice(before);
    expect(sent.map((r) => [r.form?.token, r.form?.token_type_hint, r.status])).toEqual([
      [refreshToken, 'refresh_token', 200],
      [accessToken, 'access_token', 200],
    ]);
    expect(await credentialRows(id)).toBe(0);
    expect(await auditDetail(id)).toMatchObject({ revoked: true, hadTokens: true });
  });

  it("deletes and audits 'not-offered' when the server offers no revocation", async () => {
    const { agent } = await connect(plain, SEED.camila);
    const id = await disconnect(agent);
    expect(plain.calls('revoke')).toBe(0);
    expect(await credentialRows(id)).toBe(0);
    expect(await auditDetail(id)).toMatchObject({ revoked: 'not-offered', hadTokens: true });
  });

  it('still deletes the credential when the revocation fails, audited revoked: false', async () => {
    const { agent } = await connect(revoking, SEED.desiree);
    const before = revoking.calls('revoke');
    revoking.failNext('revoke', { status: 503 });
    const id = await disconnect(agent);
    expect(revoking.calls('revoke')).toBeGreaterThan(before);
    expect(await credentialRows(id)).toBe(0);
    expect(await auditDetail(id)).toMatchObject({ revoked: false, hadTokens: true });
  });

  it('tells nobody: a deliberate disconnect records no ended-connection notice (nor its email)', async () => {
    const { agent } = await connect(revoking, SEED.derrick);
    const [{ userId }] = await t.dataSource.query<{ userId: string }[]>(
      `SELECT user_id AS "userId" FROM epic_credential c JOIN app_user u ON u.id = c.user_id
        WHERE u.fhir_user LIKE $1 AND c.organization_id = $2`,
      [`%Patient/${SEED.derrick}`, orgs.get(revoking)],
    );
    await disconnect(agent);
    await new Promise((resolve) => setTimeout(resolve, 300)); // listeners run after the request
    const [{ n }] = await t.dataSource.query<{ n: number }[]>(
      'SELECT count(*)::int AS n FROM user_connection_notice WHERE user_id = $1',
      [userId],
    );
    expect(n).toBe(0);
    expect((await agent.get('/launch/patient').expect(200)).text).not.toMatch(/ended|was disconnected/i);
  });
  it('keeps the credential when its audit entry cannot be written: the deletion and the audit are one', async () => {
    const { agent } = await connect(plain, SEED.desiree);
    const page = await agent.get('/launch/patient').expect(200);
    const id = /action="\/launch\/patient\/credentials\/([^"/]+)\/disconnect"/.exec(page.text)![1];
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
    // The audit trail refuses this action (a real database failure, nothing mocked).
    await t.dataSource.query(`
      CREATE FUNCTION refuse_disconnect_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.action = 'epic.patient-disconnect' THEN RAISE EXCEPTION 'audit unavailable'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_disconnect_audit BEFORE INSERT ON audit_event
        FOR EACH ROW EXECUTE FUNCTION refuse_disconnect_audit();`);
    try {
      const res = await agent
        .post(`/launch/patient/credentials/${id}/disconnect`)
        .type('form')
        .send({ _csrf: csrf });
      expect(res.status).toBe(500);
      expect(await credentialRows(id)).toBe(1);
    } finally {
      await t.dataSource.query(
        'DROP TRIGGER refuse_disconnect_audit ON audit_event; DROP FUNCTION refuse_disconnect_audit();',
      );
    }
    // Once the audit trail works again, the same Disconnect goes through.
    await disconnect(agent);
    expect(await credentialRows(id)).toBe(0);
  });
});
