// Discovery documents, /metadata content negotiation and the Epic-Client-ID endpoint switch.
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { obtainCode, postToken } from './spec-helpers';

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

describe('fake Epic: discovery', () => {
  let epic: FakeEpic;

  beforeAll(async () => {
    epic = await startFakeEpic();
  });
  afterAll(() => epic.close());

  it('serves a smart-configuration shaped like the sandbox, with absolute URLs', async () => {
    const res = await fetch(epic.smartConfigurationUrl);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const config = await json(res);
    expect(config).toMatchObject({
      issuer: `${epic.serverUrl}/oauth2`,
      authorization_endpoint: `${epic.serverUrl}/oauth2/authorize`,
      token_endpoint: `${epic.serverUrl}/oauth2/token`,
      jwks_uri: epic.jwksUri,
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    });
    expect(config.capabilities).toEqual(
      expect.arrayContaining(['launch-ehr', 'launch-standalone', 'authorize-post', 'sso-openid-connect']),
    );
    expect(config.capabilities).not.toContain('permission-online');
    for (const absent of [
      'revocation_endpoint',
      'introspection_endpoint',
      'token_endpoint_auth_signing_alg_values_supported',
    ]) {
      expect(config).not.toHaveProperty(absent);
    }
    expect(epic.fhirBase).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/interconnect-fhir-oauth\/api\/FHIR\/R4$/);
  });

  it('serves the OpenID configuration under the issuer and the FHIR base, and the RS256 JWKS', async () => {
    const underIssuer = await json(await fetch(`${epic.issuer}/.well-known/openid-configuration`));
    const underFhir = await json(await fetch(`${epic.fhirBase}/.well-known/openid-configuration`));
    expect(underIssuer).toEqual(underFhir);
    expect(underIssuer).toMatchObject({
      issuer: epic.issuer,
      id_token_signing_alg_values_supported: ['RS256'],
    });
    const jwks = await json(await fetch(epic.jwksUri));
    expect(jwks.keys).toEqual([
      expect.objectContaining({ kty: 'RSA', alg: 'RS256', kid: expect.any(String) }),
    ]);
  });

  it('answers /metadata in JSON only when asked (Accept or _format), else XML', async () => {
    const asJson = await fetch(epic.metadataUrl, { headers: { Accept: 'application/fhir+json' } });
    expect(asJson.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const statement = await json(asJson);
    const security = (
      statement.rest as Array<{ security: { extension: Array<{ url: string; extension: unknown[] }> } }>
    )[0].security;
    expect(security.extension[0]).toEqual({
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [
        { url: 'authorize', valueUri: epic.authorizeUrl },
        { url: 'token', valueUri: epic.tokenUrl },
      ],
    });
    const asXml = await fetch(epic.metadataUrl);
    expect(asXml.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    const xml = await asXml.text();
    expect(xml).toContain('<CapabilityStatement xmlns="http://hl7.org/fhir">');
    expect(xml).toContain(`<valueUri value="${epic.tokenUrl}"/>`);
    expect((await fetch(`${epic.metadataUrl}?_format=json`)).headers.get('content-type')).toMatch(/json/);
  });

  it('advertises and serves a revocation endpoint only with the switch', async () => {
    expect((await fetch(epic.revocationUrl, { method: 'POST' })).status).toBe(404);
    const withRevocation = await startFakeEpic({ revocationEndpoint: true });
    try {
      expect(await json(await fetch(withRevocation.smartConfigurationUrl))).toHaveProperty(
        'revocation_endpoint',
        withRevocation.revocationUrl,
      );
      const c = withRevocation.registerClient({ persistentAccess: true });
      const { code, verifier, redirectUri } = await obtainCode(withRevocation, c);
      const tokens = await postToken(
        withRevocation,
        { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri },
        { basic: [c.clientId, c.secret!] },
      );
      const refreshToken = String(tokens.body.refresh_token);
      const revoked = await postToken(
        withRevocation,
        { token: refreshToken },
        { basic: [c.clientId, c.secret!], url: withRevocation.revocationUrl },
      );
      expect(revoked.status).toBe(200);
      expect(withRevocation.inspectToken(refreshToken)).toMatchObject({ active: false });
      expect(withRevocation.inspectToken(String(tokens.body.access_token))).toMatchObject({ active: false });
    } finally {
      await withRevocation.close();
    }
  });

  describe('endpointsByClientId (Epic-Client-ID header)', () => {
    let perClient: FakeEpic;
    beforeAll(async () => {
      perClient = await startFakeEpic({ endpointsByClientId: true });
    });
    afterAll(() => perClient.close());

    it("gives the client's own endpoints only with the header; the generic ones reject the client", async () => {
      const c = perClient.registerClient();
      expect(c.authorizeUrl).not.toBe(perClient.authorizeUrl);
      const without = await json(
        await fetch(perClient.metadataUrl, { headers: { Accept: 'application/fhir+json' } }),
      );
      const withHeader = await json(
        await fetch(perClient.smartConfigurationUrl, { headers: { 'Epic-Client-ID': c.clientId } }),
      );
      expect(JSON.stringify(without)).toContain(perClient.tokenUrl);
      expect(withHeader).toMatchObject({
        authorization_endpoint: c.authorizeUrl,
        token_endpoint: c.tokenUrl,
      });
      const meta = await fetch(perClient.metadataUrl, {
        headers: { Accept: 'application/fhir+json', 'Epic-Client-ID': c.clientId },
      });
      expect(JSON.stringify(await json(meta))).toContain(c.tokenUrl);

      const generic = await perClient.authorizeAsUser(
        `${perClient.authorizeUrl}?response_type=code&client_id=${c.clientId}&redirect_uri=${encodeURIComponent(c.redirectUris[0])}&scope=openid`,
      );
      expect(generic.status).toBe(400);
      expect(generic.location).toBeUndefined();

      const { code, verifier, redirectUri } = await obtainCode(perClient, c);
      const form = {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      };
      const wrongEndpoint = await postToken(perClient, form, { basic: [c.clientId, c.secret!] });
      expect(wrongEndpoint.body.error).toBe('invalid_client');
      const right = await postToken(perClient, form, { basic: [c.clientId, c.secret!], url: c.tokenUrl });
      expect(right.status).toBe(200);
    });
  });
});
