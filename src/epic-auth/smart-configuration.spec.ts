import {
  checkSmartConfiguration,
  parseCapabilityStatement,
  parseSmartConfiguration,
} from './smart-configuration';

const EPIC = 'https://fhir.epic.com/interconnect-fhir-oauth';
const sandbox = {
  issuer: `${EPIC}/oauth2`,
  jwks_uri: `${EPIC}/api/epic/2019/Security/Open/PublicKeys/530027/OIDC`,
  authorization_endpoint: `${EPIC}/oauth2/authorize`,
  token_endpoint: `${EPIC}/oauth2/token`,
  token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
  code_challenge_methods_supported: ['S256'],
  capabilities: ['launch-ehr', 'sso-openid-connect'],
};
const secure = { authMethod: 'client_secret_basic' as const, allowInsecureLoopback: false };

describe('parseSmartConfiguration + checkSmartConfiguration', () => {
  it("accepts Epic's sandbox document", () => {
    const result = checkSmartConfiguration(parseSmartConfiguration(sandbox), secure);
    expect(result).toEqual({
      ok: true,
      config: expect.objectContaining({
        source: 'smart-configuration',
        authorizationEndpoint: `${EPIC}/oauth2/authorize`,
        tokenEndpoint: `${EPIC}/oauth2/token`,
        issuer: `${EPIC}/oauth2`,
        revocationEndpoint: undefined,
      }),
    });
  });

  it('names every problem: missing endpoint, http, no S256, unsupported auth method', () => {
    const result = checkSmartConfiguration(
      parseSmartConfiguration({
        ...sandbox,
        authorization_endpoint: undefined,
        token_endpoint: 'http://ehr.example.org/token',
        code_challenge_methods_supported: ['plain'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      }),
      secure,
    );
    expect(result).toEqual({
      ok: false,
      problems: [
        'the server does not advertise an authorization endpoint',
        'a token endpoint does not use https',
        'the server does not support PKCE with S256, which this app always uses',
        'the server does not accept the client authentication method client_secret_basic (it accepts private_key_jwt)',
      ],
    });
  });

  it('accepts http on loopback only when allowed (the fake Epic in development)', () => {
    const local = parseSmartConfiguration({
      authorization_endpoint: 'http://127.0.0.1:4010/oauth2/authorize',
      token_endpoint: 'http://127.0.0.1:4010/oauth2/token',
    });
    expect(checkSmartConfiguration(local, { ...secure, allowInsecureLoopback: true }).ok).toBe(true);
    expect(checkSmartConfiguration(local, secure).ok).toBe(false);
  });

  it('treats unadvertised PKCE and auth methods as unknown, not as unsupported', () => {
    const minimal = parseSmartConfiguration({
      authorization_endpoint: sandbox.authorization_endpoint,
      token_endpoint: sandbox.token_endpoint,
    });
    expect(checkSmartConfiguration(minimal, secure).ok).toBe(true);
  });

  it('survives junk', () => {
    expect(checkSmartConfiguration(parseSmartConfiguration('<html>'), secure).ok).toBe(false);
    expect(checkSmartConfiguration(parseCapabilityStatement(null), secure).ok).toBe(false);
  });
});

describe('parseCapabilityStatement', () => {
  it('reads the SMART oauth-uris extension', () => {
    const parsed = parseCapabilityStatement({
      resourceType: 'CapabilityStatement',
      rest: [
        {
          security: {
            extension: [
              {
                url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                extension: [
                  { url: 'authorize', valueUri: `${EPIC}/oauth2/authorize` },
                  { url: 'token', valueUri: `${EPIC}/oauth2/token` },
                ],
              },
            ],
          },
        },
      ],
    });
    expect(parsed).toMatchObject({
      source: 'metadata',
      authorizationEndpoint: `${EPIC}/oauth2/authorize`,
      tokenEndpoint: `${EPIC}/oauth2/token`,
    });
    expect(checkSmartConfiguration(parsed, secure).ok).toBe(true);
  });
});
