// The `clientJwksCache` switch: when the token endpoint fetches a private_key_jwt client's JWK Set.
import {
  createClientKey,
  signClientAssertion,
  startJwksHost,
  type ClientKey,
  type JwksHost,
} from './client-keys';
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { postToken } from './spec-helpers';
import type { FakeEpicClient } from './types';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('fake Epic: clientJwksCache', () => {
  let key: ClientKey;
  let host: JwksHost;

  beforeAll(async () => {
    key = await createClientKey('ES384');
    host = await startJwksHost([key.publicJwk]);
  });
  afterAll(() => host.close());

  /** A refresh with an unknown token: `invalid_grant` proves the assertion was verified. */
  async function call(epic: FakeEpic, client: FakeEpicClient) {
    const assertion = await signClientAssertion(key, { clientId: client.clientId, tokenUrl: epic.tokenUrl });
    return postToken(epic, {
      grant_type: 'refresh_token',
      refresh_token: 'unknown',
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
  }

  it.each([
    ['honour-cache-control (default)', undefined, 1],
    ['fetch-every-call', 'fetch-every-call' as const, 3],
  ])('%s: three token calls fetch the JWK Set as often as Epic would', async (_name, mode, fetches) => {
    const epic = await startFakeEpic(mode ? { clientJwksCache: mode } : {});
    try {
      const before = host.fetches();
      const client = epic.registerClient({ jwksUrl: host.url });
      for (let i = 0; i < 3; i++) expect((await call(epic, client)).body.error).toBe('invalid_grant');
      expect(host.fetches() - before).toBe(fetches);
      expect(epic.jwksFetches()).toHaveLength(fetches);
    } finally {
      await epic.close();
    }
  });

  it('fetch-every-call: a JWK Set that cannot answer fails the call, even right after a good one', async () => {
    const epic = await startFakeEpic({ clientJwksCache: 'fetch-every-call' });
    const down = await startJwksHost([key.publicJwk]);
    try {
      const client = epic.registerClient({ jwksUrl: down.url });
      expect((await call(epic, client)).body.error).toBe('invalid_grant');
      await down.close();
      const refused = await call(epic, client);
      expect(refused.body.error).toBe('invalid_client');
      expect(epic.requests('token').at(-1)!.rejection).toMatch(/could not fetch the JWK Set/);
    } finally {
      await epic.close();
    }
  });
});
