import TestAgent from 'supertest/lib/agent';

import { registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * Tokens belong to the client and the server that issued them. A registration that changes (client,
 * server or environment) ends the organization's users' connections too, and a credential is never
 * refreshed at (or sent to) another server than its own.
 */
describe("users' connections when the organization's registration changes", () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  async function patientOrganization(): Promise<{ orgId: string; slug: string; admin: SignedIn }> {
    const { orgId, admin } = await registeredOrganization(t, epic, {
      audience: 'patient',
      scopes: 'patient/Patient.read',
    });
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [orgId],
    );
    return { orgId, slug, admin };
  }

  async function connectPatient(agent: TestAgent, slug: string, patientId: string): Promise<void> {
    const start = await agent.get('/fhir/epic-connect').query({ org: slug }).expect(303);
    const back = await epic.authorizeAsUser(new URL(start.headers.location), {
      user: { kind: 'patient', patientId },
    });
    const callback = new URL(back.location!);
    await agent.get(callback.pathname + callback.search).expect(303);
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('✅ Connected');
  }

  const credential = async (orgId: string) =>
    (
      await t.dataSource.query<
        { ended_at: Date | null; access_token_enc: string | null; last_error: string | null }[]
      >(
        `SELECT ended_at, access_token_enc, last_error FROM epic_credential
          WHERE organization_id = $1 AND user_id IS NOT NULL`,
        [orgId],
      )
    )[0];

  it("ends the users' connections with the registration, and their page says why", async () => {
    const { orgId, slug, admin } = await patientOrganization();
    const patient = t.agent();
    await connectPatient(patient, slug, SEED.camila);

    const other = epic.registerClient({ audience: 'patient', persistentAccess: true });
    await admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({
        clientId: other.clientId,
        clientSecret: other.secret,
        environment: 'sandbox',
        fhirBaseUrl: epic.fhirBase,
      })
      .expect(200);

    expect(await credential(orgId)).toEqual({
      ended_at: expect.any(Date),
      access_token_enc: null,
      last_error: expect.stringMatching(/registration changed/),
    });
    const refreshes = epic.calls('token', { grantType: 'refresh_token' });
    const page = await patient.get('/launch/patient').expect(200);
    expect(page.text).toMatch(/id="account-ended">This connection ended[^<]*registration changed/);
    expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(refreshes);
  });

  it('never refreshes a credential at a server other than the one that issued it', async () => {
    const { orgId, slug } = await patientOrganization();
    const patient = t.agent();
    await connectPatient(patient, slug, SEED.derrick);
    // A credential issued by another server than the registered one (an older row, say), now due.
    await t.dataSource.query(
      `UPDATE epic_credential SET fhir_base_url = 'https://old-ehr.example.org/fhir/R4',
              expires_at = now() - interval '1 minute'
        WHERE organization_id = $1 AND user_id IS NOT NULL`,
      [orgId],
    );
    const before = { token: epic.calls('token'), fhir: epic.calls('fhir') };

    const page = await patient.get('/launch/patient').expect(200);
    expect(page.text).toMatch(/id="account-ended">This connection ended[^<]*another FHIR server/);
    expect({ token: epic.calls('token'), fhir: epic.calls('fhir') }).toEqual(before);
    expect(await credential(orgId)).toMatchObject({ ended_at: expect.any(Date), access_token_enc: null });
  });
});
