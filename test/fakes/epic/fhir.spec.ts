// The FHIR API: bearer checks, scopes, patient compartment, reads, searches and paging.
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { fhirGet, obtainTokens } from './spec-helpers';

describe('fake Epic: FHIR API', () => {
  let epic: FakeEpic;
  let providerToken: string;
  let patientToken: string;

  beforeAll(async () => {
    epic = await startFakeEpic();
    providerToken = String((await obtainTokens(epic, epic.registerClient())).access_token);
    const patientApp = epic.registerClient({ audience: 'patient' });
    patientToken = String((await obtainTokens(epic, patientApp)).access_token); // Camila, the default MyChart user
  });
  afterAll(() => epic.close());

  describe('bearer tokens', () => {
    it('401 without a token, with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
      const res = await fhirGet(epic, `Patient/${SEED.camila}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(res.headers.get('www-authenticate')).not.toMatch(/error=/);
    });

    it('401 invalid_token for unknown, revoked and expired tokens', async () => {
      const unknown = await fhirGet(epic, `Patient/${SEED.camila}`, 'not-a-token');
      expect(unknown.status).toBe(401);
      expect(unknown.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

      const revoked = String((await obtainTokens(epic, epic.registerClient())).access_token);
      epic.revokeAccessToken(revoked);
      expect(
        (await fhirGet(epic, `Patient/${SEED.camila}`, revoked)).headers.get('www-authenticate'),
      ).toMatch(/invalid_token.*revoked/);

      const aging = String((await obtainTokens(epic, epic.registerClient())).access_token);
      epic.advanceClock(3599_000);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, aging)).status).toBe(200);
      epic.advanceClock(2_000);
      const expired = await fhirGet(epic, `Patient/${SEED.camila}`, aging);
      expect(expired.status).toBe(401);
      expect(expired.headers.get('www-authenticate')).toMatch(/invalid_token.*expired/);
    });

    it('expireAccessTokens expires every token issued so far, not later ones', async () => {
      const before = String((await obtainTokens(epic, epic.registerClient())).access_token);
      epic.expireAccessTokens();
      const after = String((await obtainTokens(epic, epic.registerClient())).access_token);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, before)).status).toBe(401);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, after)).status).toBe(200);
      providerToken = after;
      patientToken = String(
        (await obtainTokens(epic, epic.registerClient({ audience: 'patient' }))).access_token,
      );
    });
  });

  describe('scopes', () => {
    it('403 insufficient_scope for a resource type the token has no scope for', async () => {
      const c = epic.registerClient({ scopes: ['user/Patient.read'] });
      const token = String((await obtainTokens(epic, c)).access_token);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, token)).status).toBe(200);
      const res = await fhirGet(epic, `Observation?patient=${SEED.camila}`, token);
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
      expect(res.body.resourceType).toBe('OperationOutcome');
    });

    it('SMART v2 scopes: .r reads, .s searches', async () => {
      const c = epic.registerClient({ scopes: ['user/Patient.r'] });
      const token = String((await obtainTokens(epic, c)).access_token);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, token)).status).toBe(200);
      expect((await fhirGet(epic, 'Patient?family=Lopez', token)).status).toBe(403);
      const rs = epic.registerClient({ scopes: ['user/Patient.rs'] });
      expect(
        (await fhirGet(epic, 'Patient?family=Lopez', String((await obtainTokens(epic, rs)).access_token)))
          .status,
      ).toBe(200);
    });
  });

  describe('a patient token reads only its patient', () => {
    it('reads its own Patient, not another', async () => {
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, patientToken)).status).toBe(200);
      const other = await fhirGet(epic, `Patient/${SEED.derrick}`, patientToken);
      expect(other.status).toBe(403);
      expect(JSON.stringify(other.body)).toContain('not authorized');
    });

    it('searches only its own compartment', async () => {
      const own = await fhirGet(epic, 'Observation?category=laboratory', patientToken);
      expect(own.status).toBe(200);
      expect(own.body.total).toBe(1);
      expect((await fhirGet(epic, `Observation?patient=${SEED.derrick}`, patientToken)).status).toBe(403);
      const patients = await fhirGet(epic, 'Patient', patientToken);
      expect(patients.body.total).toBe(1);
      expect((await fhirGet(epic, `Observation/eFkObs.Der.A1C.1`, patientToken)).status).toBe(403);
      expect((await fhirGet(epic, `Practitioner/${SEED.practitioner}`, patientToken)).status).toBe(200);
    });
  });

  describe('reads and searches', () => {
    it('reads seeded resources and 404s unknown ones', async () => {
      const patient = await fhirGet(epic, `Patient/${SEED.camila}`, providerToken);
      expect(patient.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(patient.body).toMatchObject({
        resourceType: 'Patient',
        id: SEED.camila,
        name: [{ family: 'Lopez' }],
      });
      expect(
        (await fhirGet(epic, `Practitioner/${SEED.practitioner}`, providerToken)).body.resourceType,
      ).toBe('Practitioner');
      expect((await fhirGet(epic, 'Patient/nope', providerToken)).status).toBe(404);
    });

    it('searches Patient by name, birthdate and identifier', async () => {
      const byName = await fhirGet(epic, 'Patient?family=lop&given=Cam', providerToken);
      expect(byName.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
      expect((byName.body.entry as Array<{ fullUrl: string }>)[0].fullUrl).toBe(
        `${epic.fhirBase}/Patient/${SEED.camila}`,
      );
      expect((await fhirGet(epic, 'Patient?birthdate=1973-06-03', providerToken)).body.total).toBe(1);
      expect((await fhirGet(epic, 'Patient?identifier=203713', providerToken)).body.total).toBe(1);
    });

    it('pages a search with absolute next links until the end', async () => {
      let url: string | undefined = `Observation?patient=${SEED.camila}&_count=5`;
      const ids: string[] = [];
      let pages = 0;
      while (url) {
        const page = await fhirGet(epic, url, providerToken);
        expect(page.body.total).toBe(13);
        ids.push(...(page.body.entry as Array<{ resource: { id: string } }>).map((e) => e.resource.id));
        url = (page.body.link as Array<{ relation: string; url: string }>).find(
          (l) => l.relation === 'next',
        )?.url;
        if (url) expect(url.startsWith(epic.fhirBase)).toBe(true);
        pages += 1;
      }
      expect(pages).toBe(3);
      expect(new Set(ids).size).toBe(13);
    });

    it('filters Observation by category and code, Encounter by patient', async () => {
      expect(
        (await fhirGet(epic, `Observation?patient=${SEED.camila}&category=vital-signs`, providerToken)).body
          .total,
      ).toBe(12);
      expect(
        (
          await fhirGet(
            epic,
            `Observation?subject=Patient/${SEED.camila}&code=http://loinc.org|4548-4`,
            providerToken,
          )
        ).body.total,
      ).toBe(1);
      expect((await fhirGet(epic, `Encounter?patient=${SEED.camila}`, providerToken)).body.total).toBe(3);
    });

    it('needs a patient for Observation searches with a user token', async () => {
      expect((await fhirGet(epic, 'Observation', providerToken)).status).toBe(400);
    });

    it('serves resources added by a test', async () => {
      epic.addResource({ resourceType: 'Patient', id: 'added-1', name: [{ family: 'Added' }] });
      expect((await fhirGet(epic, 'Patient/added-1', providerToken)).body.name).toEqual([
        { family: 'Added' },
      ]);
    });
  });
});
