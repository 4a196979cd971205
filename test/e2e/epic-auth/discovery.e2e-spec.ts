import { EpicAuthError, EpicAuthErrorCode } from 'src/epic-auth/epic-auth.errors';
import { SmartDiscoveryService } from 'src/epic-auth/smart-discovery.service';

import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('SMART discovery against the fake Epic', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let sut: SmartDiscoveryService;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { EPIC_HTTP_TIMEOUT_MS: '500', DISCOVERY_CACHE_SECONDS: '3600' } }),
      startFakeEpic({ endpointsByClientId: true }),
    ]);
    sut = t.app.get(SmartDiscoveryService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  beforeEach(() => {
    epic.clearFaults();
    sut.forget(epic.fhirBase);
  });

  it('reads the well-known SMART configuration, sending Epic-Client-ID, and caches it', async () => {
    const client = epic.registerClient();
    const before = epic.calls('smart-configuration');
    const config = await sut.discover(epic.fhirBase, { clientId: client.clientId });
    expect(config).toMatchObject({
      source: 'smart-configuration',
      authorizationEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//),
      tokenEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//),
      issuer: epic.issuer,
      codeChallengeMethods: ['S256'],
    });
    expect(config.revocationEndpoint).toBeUndefined(); // Epic advertises none
    const [request] = epic.requests('smart-configuration').slice(-1);
    expect(request.headers['epic-client-id']).toBe(client.clientId);

    await Promise.all([1, 2, 3].map(() => sut.discover(epic.fhirBase, { clientId: client.clientId })));
    expect(epic.calls('smart-configuration')).toBe(before + 1);
  });

  it('fetches again once the cache has expired', async () => {
    const client = epic.registerClient();
    const now = new Date();
    await sut.discover(epic.fhirBase, { clientId: client.clientId, now });
    const before = epic.calls('smart-configuration');
    await sut.discover(epic.fhirBase, { clientId: client.clientId, now: new Date(now.getTime() + 3599_000) });
    expect(epic.calls('smart-configuration')).toBe(before);
    await sut.discover(epic.fhirBase, { clientId: client.clientId, now: new Date(now.getTime() + 3601_000) });
    expect(epic.calls('smart-configuration')).toBe(before + 1);
  });

  it('falls back to /metadata as JSON with Epic-Client-ID when the well-known file fails', async () => {
    const client = epic.registerClient();
    epic.failNext('smart-configuration', { status: 404 });
    const config = await sut.discover(epic.fhirBase, { clientId: client.clientId });
    expect(config.source).toBe('metadata');
    // The CapabilityStatement names no OpenID issuer or keys: OpenID discovery supplies them, so
    // id_tokens can still be checked.
    expect(config).toMatchObject({ issuer: epic.issuer, jwksUri: epic.jwksUri });
    const [request] = epic.requests('metadata').slice(-1);
    expect(request.headers.accept).toBe('application/fhir+json');
    expect(request.headers['epic-client-id']).toBe(client.clientId);
    // Per-client endpoints (endpointsByClientId): the same ones either way.
    sut.forget(epic.fhirBase);
    expect((await sut.discover(epic.fhirBase, { clientId: client.clientId })).tokenEndpoint).toBe(
      config.tokenEndpoint,
    );
  });

  it('reuses a fallback result only briefly, then asks the well-known document again', async () => {
    const later = (seconds: number) => new Date(Date.now() + seconds * 1000);
    sut.forget(epic.fhirBase);
    epic.failNext('smart-configuration', { status: 503 });
    expect((await sut.discover(epic.fhirBase)).source).toBe('metadata');
    expect((await sut.discover(epic.fhirBase, { now: later(30) })).source).toBe('metadata');
    expect((await sut.discover(epic.fhirBase, { now: later(61) })).source).toBe('smart-configuration');
  });

  it('fails with a readable message naming both routes, and caches nothing', async () => {
    epic.failNext('smart-configuration', { status: 503 });
    epic.failNext('metadata', { malformedJson: true });
    const error = await sut.discover(epic.fhirBase).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EpicAuthError);
    expect((error as EpicAuthError).code).toBe(EpicAuthErrorCode.DiscoveryFailed);
    expect((error as EpicAuthError).message).toBe(
      `Could not discover the SMART endpoints of ${epic.fhirBase}: .well-known/smart-configuration answered HTTP 503; ` +
        'metadata did not return JSON. Check the FHIR base URL.',
    );
    await expect(sut.discover(epic.fhirBase)).resolves.toMatchObject({ source: 'smart-configuration' });
  });

  it('says when the server is too slow', async () => {
    epic.failNext('smart-configuration', { delayMs: 1500 });
    epic.failNext('metadata', { delayMs: 1500 });
    await expect(sut.discover(epic.fhirBase)).rejects.toThrow(
      /smart-configuration timed out after 500 ms; metadata timed out after 500 ms/,
    );
  });

  it('refuses a server that does not offer our client authentication method', async () => {
    await expect(
      sut.discover(epic.fhirBase, { authMethod: 'client_secret_jwt' as never }),
    ).rejects.toMatchObject({
      code: EpicAuthErrorCode.DiscoveryIncompatible,
      message: expect.stringContaining('does not accept the client authentication method client_secret_jwt'),
    });
  });

  it('names an unreachable server', async () => {
    await expect(sut.discover('http://127.0.0.1:9/fhir')).rejects.toThrow(
      /smart-configuration could not be reached; metadata could not be reached/,
    );
  });
});
