import { setTimeout as sleep } from 'node:timers/promises';

import { DatabaseEndpoint } from 'src/database/database-endpoint';
import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';
import { overshootBound } from 'src/gateway/throttle/throttle-policy';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { createEmbeddedTestApp } from 'test/setup/embedded-database';
import { TestApp } from 'test/setup/test-app';

import { burst, startedWithin } from './throttle-harness';

/**
 * The embedded database (PGlite) takes one connection. The throttle holds no transaction while a
 * request waits, so waiting requests, leases, an override (a transaction) and the app's own
 * queries all get through. The app boots as `npm start` without DATABASE_URL does (migrations
 * included); the throttle is that app's own GatewayThrottleService.
 */
describe('gateway throttle on the embedded database (one connection)', () => {
  let t: TestApp;
  let throttle: GatewayThrottleService;

  beforeAll(async () => {
    t = await createEmbeddedTestApp({
      env: { GATEWAY_RATE_PER_SECOND: '100', GATEWAY_CONCURRENCY: '5', GATEWAY_QUEUE_WAIT_MS: '5000' },
    });
    const endpoint = t.app.get(DatabaseEndpoint);
    if (endpoint.mode !== 'embedded' || endpoint.poolSize !== 1) throw new Error('not the embedded database');
    throttle = t.app.get(GatewayThrottleService);
  }, 60_000);
  afterAll(() => t?.close());

  it('throttles a burst while overrides, pauses and other queries share the one connection', async () => {
    const factory = new TestFactory(t);
    const root = await factory.user(Role.RootAdmin, null);
    const org = (await factory.organization()).id;
    const other = (await factory.organization()).id;

    const load = burst({
      organizationId: org,
      instances: [throttle],
      workers: 20,
      durationMs: 3000,
      holdMs: [5, 15],
    });
    await sleep(500);
    // Meanwhile, on the same connection: a transaction (override + audit) and plain reads.
    const asked = Date.now();
    await throttle.setOverride(root, other, { concurrency: 2 });
    await t.app.get(OrganizationsService).get(other);
    expect(Date.now() - asked).toBeLessThan(1000);
    const run = await load;

    expect(startedWithin(run, 3000)).toBeGreaterThanOrEqual(0.5 * 100 * 3);
    expect(startedWithin(run, 3000)).toBeLessThanOrEqual(100 * 3 + overshootBound(100, 1));
    expect(run.maxInFlight).toBeLessThanOrEqual(5);
    expect(run.rejections).toEqual([]);
    expect(await throttle.limits(other)).toEqual({ ratePerSecond: 100, concurrency: 2 });

    // An upstream 429 of 1 s: the next request waits it out.
    await throttle.upstreamThrottled(org, 1);
    const paused = Date.now();
    (await throttle.acquire(org))();
    expect(Date.now() - paused).toBeGreaterThanOrEqual(900);
  }, 30_000);
});
