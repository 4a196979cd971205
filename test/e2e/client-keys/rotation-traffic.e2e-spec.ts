import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { registeredOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

const OVERLAP_SECONDS = 600;
/** The app's JWK Set Cache-Control: half the overlap. */
const MAX_AGE_MS = (OVERLAP_SECONDS / 2) * 1000;

/**
 * The app's JWK Set as Epic reaches it, through a relay that can go down: while it is down, Epic
 * can only use the key set it cached, which is what the rotation schedule must allow for.
 */
async function startRelay(target: string): Promise<{
  url: string;
  fetches: () => number;
  setDown: (down: boolean) => void;
  close: () => Promise<void>;
}> {
  let down = false;
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches += 1;
    if (down) {
      res.writeHead(503).end();
      return;
    }
    void fetch(target).then(async (upstream) => {
      res.writeHead(upstream.status, {
        'Content-Type': upstream.headers.get('content-type') ?? 'application/json',
        'Cache-Control': upstream.headers.get('cache-control') ?? '',
      });
      res.end(await upstream.text());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    fetches: () => fetches,
    setDown: (value) => {
      down = value;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Key rotation under traffic (keys rotate without a single failed token call): a token
 * call succeeds while Epic's cached key set is the old one and while it is the new one, because a
 * key is published a full overlap (more than the cache lifetime) before it signs.
 */
describe('key rotation keeps every token call working', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let relay: Awaited<ReturnType<typeof startRelay>>;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({
        env: { KEY_ROTATION_OVERLAP_SECONDS: String(OVERLAP_SECONDS), REFRESH_COOLDOWN_SECONDS: '0' },
      }),
      startFakeEpic(),
    ]);
    // The factory's organization is in the sandbox environment: its key set and URL.
    relay = await startRelay(`${await listenOnLoopback(t)}/.well-known/jwks-sandbox.json`);
  });
  afterAll(async () => {
    await relay.close();
    await epic.close();
    await t.close();
  });

  const publishedKids = async (): Promise<string[]> =>
    (
      (await t.http().get('/.well-known/jwks-sandbox.json').expect(200)).body as { keys: { kid: string }[] }
    ).keys.map((k) => k.kid);
  const activeRsKid = async (): Promise<string> =>
    (
      await t.dataSource.query<{ kid: string }[]>(
        `SELECT kid FROM client_signing_key WHERE environment = 'sandbox' AND alg = 'RS384' AND state = 'active'`,
      )
    )[0].kid;

  it('across publish, promote and retire, with Epic unable to re-fetch at the moments that matter', async () => {
    const { orgId, clientId, admin } = await registeredOrganization(t, epic, {
      jwksUrl: relay.url,
      backend: {},
      scopes: 'system/Patient.read',
    });
    const rotation = t.app.get(KeyRotationService);
    const fhir = t.app.get(FhirClientService);
    const grants = () =>
      epic.requests('token').filter((r) => r.clientId === clientId && r.grantType === 'client_credentials');
    /**
     * One token call, and the status Epic answered it with: the admin's Connect the first time, then
     * a FHIR read once the stored token has ended.
     */
    const tokenCall = async (): Promise<number> => {
      const before = grants().length;
      if (before === 0) {
        await admin.agent.post(`/connect_epic/${orgId}`).type('form').send({ _csrf: admin.csrf }).expect(303);
      } else {
        await setStoredExpiry(t, orgId, -60_000);
        await fhir
          .forOrganization(orgId)
          .read('Patient', SEED.camila)
          .catch(() => undefined);
      }
      expect(grants()).toHaveLength(before + 1);
      return grants().at(-1)!.status ?? 0;
    };
    const oldKid = await activeRsKid();

    // 1. Epic fetches and caches the current key set.
    expect(await tokenCall()).toBe(200);
    expect(relay.fetches()).toBe(1);

    // 2. A rotation publishes the next key; the old key still signs. Epic cannot re-fetch: its
    //    cached (old) set is enough.
    const t0 = new Date();
    await rotation.startRotation(null, 'sandbox', t0);
    expect(await publishedKids()).toHaveLength(4); // RS384 and ES384, each active and next
    relay.setDown(true);
    expect(await tokenCall()).toBe(200);

    // 3. Epic's cache ends within the overlap and it re-fetches: the new set has both keys.
    relay.setDown(false);
    epic.advanceClock(MAX_AGE_MS + 1000);
    expect(await tokenCall()).toBe(200);
    expect(relay.fetches()).toBe(2);

    // 4. After the overlap the next key signs. Epic cannot re-fetch, and does not need to.
    relay.setDown(true);
    await rotation.tick(new Date(t0.getTime() + OVERLAP_SECONDS * 1000));
    const newKid = await activeRsKid();
    expect(newKid).not.toBe(oldKid);
    expect(await publishedKids()).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(await tokenCall()).toBe(200);
    expect(relay.fetches()).toBe(2);

    // 5. After another overlap the old key is retired: no longer published; calls go on.
    relay.setDown(false);
    await rotation.tick(new Date(t0.getTime() + 2 * OVERLAP_SECONDS * 1000));
    expect(await publishedKids()).not.toContain(oldKid);
    epic.advanceClock(MAX_AGE_MS + 1000);
    expect(await tokenCall()).toBe(200);
    expect(grants().every((g) => g.status === 200)).toBe(true);

    // Control: a key that signs before Epic could have seen it is refused, which is why the
    // schedule waits. (Published and promoted at once, with Epic unable to re-fetch.)
    relay.setDown(true);
    const t1 = new Date(t0.getTime() + 3 * OVERLAP_SECONDS * 1000);
    await rotation.startRotation(null, 'sandbox', t1);
    await rotation.tick(new Date(t1.getTime() + OVERLAP_SECONDS * 1000));
    expect(await tokenCall()).toBe(400);
    expect(grants().at(-1)!.rejection).toMatch(/JWK Set URL answered 503/);
  });
});
