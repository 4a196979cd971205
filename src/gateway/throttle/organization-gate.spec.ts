import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import type { LeaseRequest, LeaseResult } from './gateway-budget.repository';
import type { ThrottleRejection } from './gateway-throttle.metrics';
import { GateSettings, OrganizationGate } from './organization-gate';
import { HEARTBEAT_MS } from './throttle-policy';

const ORG = '7d7e1a52-54a1-4b1c-9a51-3f1f0c1e2b3a';

/**
 * A stand-in for the shared budget (the real one is tested on PostgreSQL in
 * test/e2e/gateway-throttle): it answers each lease with what `answer` says.
 */
function fakeBudget(answer: (request: LeaseRequest) => Partial<LeaseResult> = () => ({})) {
  const requests: LeaseRequest[] = [];
  let failWith: Error | undefined;
  let hold: Promise<void> | undefined;
  return {
    requests,
    failNext(error: Error) {
      failWith = error;
    },
    holdLeases(until: Promise<void>) {
      hold = until;
    },
    lease: async (request: LeaseRequest): Promise<LeaseResult> => {
      requests.push(request);
      if (hold) await hold;
      if (failWith) {
        const error = failWith;
        failWith = undefined;
        throw error;
      }
      const slots = 2;
      return {
        granted: Math.min(request.want, 10),
        tokensLeft: 5,
        validInMs: 0,
        ratePerSecond: 100,
        concurrency: 10,
        slots: Math.max(request.inFlight, request.demand > 0 ? slots : 0),
        slotTarget: request.demand > 0 ? slots : 0,
        slotShare: request.demand > 0 ? slots : 0,
        pausedMs: 0,
        turnLeftMs: 1000,
        ...answer(request),
      };
    },
  };
}

function gateWith(budget: ReturnType<typeof fakeBudget>, settings: Partial<GateSettings> = {}) {
  const events = { queued: 0, throttled: [] as ThrottleRejection[], failures: [] as unknown[], idle: 0 };
  const gate = new OrganizationGate(
    ORG,
    { ratePerSecond: 100, concurrency: 10 },
    { queueMax: 100, queueWaitMs: 2000, ...settings },
    {
      lease: budget.lease,
      queued: () => (events.queued += 1),
      throttled: (reason) => events.throttled.push(reason),
      leaseFailed: (error) => events.failures.push(error),
      idle: () => (events.idle += 1),
    },
  );
  return { gate, events };
}

/** Settles a promise without letting a rejection go unhandled, for checking later. */
function settle<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; done: boolean } = { done: false };
  promise.then(
    (value) => Object.assign(state, { value, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  );
  return state;
}

const tick = (ms = 0) => jest.advanceTimersByTimeAsync(ms);

describe('OrganizationGate', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('starts a request after one lease, and leases ahead so most requests need no statement', async () => {
    const budget = fakeBudget();
    const { gate } = gateWith(budget);
    (await gate.acquire())();
    expect(budget.requests).toEqual([{ want: 1, demand: 1, inFlight: 0 }]);
    for (let i = 0; i < 20; i++) {
      await tick(25); // 40 requests a second, one at a time
      (await gate.acquire())();
    }
    expect(budget.requests.length).toBeLessThanOrEqual(8);
    await gate.close();
  });

  it('starts requests on reserved tokens only once the refill has paid for them', async () => {
    const budget = fakeBudget((r) => ({ granted: r.want > 0 ? 10 : 0, tokensLeft: -10, validInMs: 80 }));
    const { gate } = gateWith(budget);
    const first = settle(gate.acquire());
    await tick(79);
    expect(first.done).toBe(false);
    await tick(1);
    expect(first.value).toEqual(expect.any(Function));
    first.value!();
    (await gate.acquire())(); // from the same reservation, now paid
    expect(budget.requests).toHaveLength(1);
    await gate.close();
  });

  it('runs no more requests than the slots it leases; a waiter starts when one is released', async () => {
    const { gate } = gateWith(fakeBudget());
    const first = settle(gate.acquire());
    const second = settle(gate.acquire());
    const third = settle(gate.acquire());
    await tick();
    expect([first.done, second.done, third.done]).toEqual([true, true, false]);
    first.value!();
    await tick();
    expect(third.done).toBe(true);
    expect(third.value).toEqual(expect.any(Function));
    second.value!();
    third.value!();
    await gate.close();
  });

  it('ignores a second call of a release function', async () => {
    const { gate } = gateWith(fakeBudget());
    const a = await gate.acquire();
    const b = await gate.acquire();
    const waiting = settle(gate.acquire());
    a();
    a(); // would free a second slot if counted
    const more = settle(gate.acquire());
    await tick();
    expect(waiting.done).toBe(true);
    expect(more.done).toBe(false);
    b();
    await tick();
    expect(more.done).toBe(true);
    await gate.close();
  });

  it('refuses at once with 429 and Retry-After when the queue is full', async () => {
    const budget = fakeBudget();
    let open!: () => void;
    budget.holdLeases(new Promise<void>((resolve) => (open = resolve)));
    const { gate, events } = gateWith(budget, { queueMax: 2 });
    const queued = [settle(gate.acquire()), settle(gate.acquire())];
    await expect(gate.acquire()).rejects.toMatchObject({
      code: ErrorCode.RateLimited,
      organizationId: ORG,
      retryAfterSeconds: 1,
    });
    expect(events).toMatchObject({ queued: 2, throttled: ['queue_full'] });
    open();
    await tick();
    expect(queued.map((q) => q.done)).toEqual([true, true]);
    await gate.close();
  });

  it('refuses a request that waited GATEWAY_QUEUE_WAIT_MS for a token', async () => {
    const budget = fakeBudget(() => ({ granted: 0, tokensLeft: 0 }));
    const { gate, events } = gateWith(budget, { queueWaitMs: 500 });
    const waiting = settle(gate.acquire());
    await tick(499);
    expect(waiting.done).toBe(false);
    await tick(1);
    expect(waiting.error).toBeInstanceOf(DomainError);
    expect(waiting.error).toMatchObject({ code: ErrorCode.RateLimited, retryAfterSeconds: 1 });
    expect(events.throttled).toEqual(['queue_timeout']);
    // Starved, it asked again no sooner than the bucket could refill the batch (10 at 100/s: 100 ms).
    expect(budget.requests.length).toBeGreaterThan(1);
    expect(budget.requests.length).toBeLessThanOrEqual(6);
    await gate.close();
  });

  it('waits out a pause shorter than the queue wait, and refuses at once during a longer one', async () => {
    const budget = fakeBudget();
    const { gate, events } = gateWith(budget, { queueWaitMs: 2000 });
    gate.pause(Date.now() + 1000);
    const waiting = settle(gate.acquire());
    await tick(999);
    expect(waiting.done).toBe(false);
    expect(budget.requests).toHaveLength(0); // no lease while paused
    await tick(1);
    expect(waiting.value).toEqual(expect.any(Function));
    waiting.value!();

    gate.pause(Date.now() + 4500);
    await expect(gate.acquire()).rejects.toMatchObject({ code: ErrorCode.RateLimited, retryAfterSeconds: 5 });
    expect(events.throttled).toEqual(['paused']);
    await gate.close();
  });

  it('refuses the waiters that cannot outlast a pause another instance reported', async () => {
    const budget = fakeBudget(() => ({ granted: 0, tokensLeft: 0, pausedMs: 3000 }));
    const { gate, events } = gateWith(budget, { queueWaitMs: 2000 });
    await expect(gate.acquire()).rejects.toMatchObject({ code: ErrorCode.RateLimited, retryAfterSeconds: 3 });
    expect(events.throttled).toEqual(['paused']);
    await expect(gate.acquire()).rejects.toMatchObject({ retryAfterSeconds: 3 }); // known now: no lease
    expect(budget.requests).toHaveLength(1);
    await gate.close();
  });

  it('drops held tokens when paused', async () => {
    const budget = fakeBudget((r) => ({ granted: r.want > 0 ? 10 : 0 }));
    const { gate } = gateWith(budget, { queueWaitMs: 2000 });
    (await gate.acquire())(); // 9 tokens left
    (await gate.acquire())(); // from them
    expect(budget.requests).toHaveLength(1);
    gate.pause(Date.now() + 200);
    const after = settle(gate.acquire());
    await tick(200);
    expect(after.done).toBe(true);
    expect(budget.requests.filter((r) => r.want > 0)).toHaveLength(2); // leased again after the pause
    after.value!();
    await gate.close();
  });

  it('rejects the waiters with the error of a failed lease, and leases again for the next request', async () => {
    const budget = fakeBudget();
    const { gate, events } = gateWith(budget);
    const failure = new Error('connection reset');
    budget.failNext(failure);
    await expect(gate.acquire()).rejects.toBe(failure);
    expect(events.failures).toEqual([failure]);
    await tick(250);
    const release = await gate.acquire();
    release();
    await gate.close();
  });

  it('renews its slot lease while busy, then gives it back and goes idle', async () => {
    const budget = fakeBudget();
    const { gate, events } = gateWith(budget);
    const release = await gate.acquire();
    await tick(HEARTBEAT_MS);
    expect(budget.requests[1]).toMatchObject({ want: 0, demand: 1, inFlight: 1 });
    release();
    await tick(HEARTBEAT_MS); // the peak since the last lease was still 1
    await tick(HEARTBEAT_MS);
    expect(budget.requests.at(-1)).toMatchObject({ want: 0, demand: 0, inFlight: 0 });
    expect(events.idle).toBeGreaterThanOrEqual(1);
    const count = budget.requests.length;
    await tick(10 * HEARTBEAT_MS);
    expect(budget.requests).toHaveLength(count); // idle: no more statements
    expect(jest.getTimerCount()).toBe(0);
  });

  it('asks again soon for slots while below its fair share', async () => {
    let target = 0;
    const budget = fakeBudget((r) => ({
      slotTarget: target,
      slotShare: 2,
      slots: Math.max(r.inFlight, target),
    }));
    const { gate } = gateWith(budget);
    const waiting = settle(gate.acquire());
    await tick(50);
    expect(waiting.done).toBe(false);
    target = 2; // the other instance gave its slots back
    await tick(100);
    expect(waiting.value).toEqual(expect.any(Function));
    waiting.value!();
    await gate.close();
  });

  it('refuses what waits on close() and leaves no timer behind', async () => {
    const budget = fakeBudget(() => ({ granted: 0, tokensLeft: 0 }));
    const { gate } = gateWith(budget);
    const waiting = settle(gate.acquire());
    await tick(10);
    expect(await gate.close()).toBe(true); // the database holds its demand: to give back
    await tick();
    expect(waiting.error).toMatchObject({ code: ErrorCode.RateLimited, retryAfterSeconds: 1 });
    expect(jest.getTimerCount()).toBe(0);
    await expect(gate.acquire()).rejects.toMatchObject({ code: ErrorCode.RateLimited });
  });

  it('sizes a lease by the requests waiting, up to a batch', async () => {
    const budget = fakeBudget();
    let open!: () => void;
    budget.holdLeases(new Promise<void>((resolve) => (open = resolve)));
    const { gate } = gateWith(budget);
    const releases = Array.from({ length: 30 }, () => settle(gate.acquire()));
    open();
    await tick();
    expect(budget.requests[0].want).toBe(1); // the first request alone
    const leased = budget.requests.slice(1).map((r) => r.want);
    expect(Math.max(...leased)).toBe(10); // a batch at 100/s
    for (const r of releases) r.value?.();
    await gate.close();
  });
});
