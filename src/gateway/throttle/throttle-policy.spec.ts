import {
  ArrivalRate,
  batchSize,
  bucketCapacity,
  LEASE_PERIOD_MS,
  MAX_LEASE_DELAY_MS,
  nextLeaseDelayMs,
  overshootBound,
  retryAfterSeconds,
  tokensToLease,
  upstreamPauseSeconds,
} from './throttle-policy';

describe('batchSize and bucketCapacity', () => {
  it.each([
    [1, 1],
    [5, 1],
    [10, 1],
    [11, 2],
    [20, 2],
    [100, 10],
    [101, 11],
    [500, 50],
    [10_000, 1_000],
  ])('leases at most a tenth of a second of %i/s in one batch (%i), at least 1', (rate, batch) => {
    expect(batchSize(rate)).toBe(batch);
    expect(bucketCapacity(rate)).toBe(2 * batch);
  });
});

describe('overshootBound', () => {
  it('holds the default limit (20/s) within 10% over 4 s with two instances', () => {
    const rate = 20;
    expect(overshootBound(rate, 2)).toBe(8);
    expect(overshootBound(rate, 2) / (rate * 4)).toBeLessThanOrEqual(0.1);
  });

  it('grows by one batch per instance', () => {
    expect(overshootBound(500, 3) - overshootBound(500, 2)).toBe(batchSize(500));
  });
});

describe('tokensToLease', () => {
  it('asks for one token for one request on a quiet instance', () => {
    expect(tokensToLease(1, 0, 10)).toBe(1);
    expect(tokensToLease(1, 1, 10)).toBe(1); // 0.25 requests expected in the next 250 ms
  });

  it('asks for the waiting requests plus the arrivals expected over the next 250 ms', () => {
    expect(tokensToLease(1, 8, 10)).toBe(3);
    expect(tokensToLease(3, 20, 10)).toBe(8);
  });

  it('never asks for more than a batch, nor fewer than one', () => {
    expect(tokensToLease(500, 1000, 10)).toBe(10);
    expect(tokensToLease(0, 0, 10)).toBe(1);
  });
});

describe('nextLeaseDelayMs', () => {
  it('allows the next lease as soon as a full grant is used (it reserved ahead, nothing to wait for)', () => {
    expect(nextLeaseDelayMs(10, 10, 100, 0.5)).toBe(0);
  });

  it('after a short grant, waits until the rate refilled what was asked, at least one lease period', () => {
    expect(nextLeaseDelayMs(2, 0, 100, 0)).toBe(LEASE_PERIOD_MS);
    expect(nextLeaseDelayMs(10, 3, 50, 0)).toBe(200);
  });

  it('adds up to half a lease period at random after a short grant', () => {
    expect(nextLeaseDelayMs(2, 0, 100, 0.999)).toBe(LEASE_PERIOD_MS * 1.5);
  });

  it('waits at most MAX_LEASE_DELAY_MS', () => {
    expect(nextLeaseDelayMs(1, 0, 0.1, 0)).toBe(MAX_LEASE_DELAY_MS);
  });
});

describe('retryAfterSeconds', () => {
  it('gives the rest of an upstream pause, rounded up', () => {
    expect(retryAfterSeconds({ pausedMs: 2500, waiting: 1, ratePerSecond: 20 })).toBe(3);
  });

  it('else about how long the requests ahead take at the rate, 1 to 60 s', () => {
    expect(retryAfterSeconds({ pausedMs: 0, waiting: 45, ratePerSecond: 20 })).toBe(3);
    expect(retryAfterSeconds({ pausedMs: 0, waiting: 1, ratePerSecond: 20 })).toBe(1);
    expect(retryAfterSeconds({ pausedMs: 0, waiting: 10_000, ratePerSecond: 1 })).toBe(60);
  });
});

describe('upstreamPauseSeconds', () => {
  it('honours Retry-After, rounded up, within 1 s to 15 min', () => {
    expect(upstreamPauseSeconds(2.2, 5)).toBe(3);
    expect(upstreamPauseSeconds(120, 5)).toBe(120);
    expect(upstreamPauseSeconds(86_400, 5)).toBe(900);
  });

  it('takes the default when the server gave none (or nonsense)', () => {
    expect(upstreamPauseSeconds(null, 5)).toBe(5);
    expect(upstreamPauseSeconds(0, 5)).toBe(5);
    expect(upstreamPauseSeconds(-3, 5)).toBe(5);
    expect(upstreamPauseSeconds(Number.NaN, 5)).toBe(5);
  });
});

describe('ArrivalRate', () => {
  it('measures a steady rate and forgets it after a quiet spell', () => {
    const rate = new ArrivalRate();
    let now = 0;
    for (; now < 5000; now += 20) rate.record(now); // 50 per second
    expect(rate.perSecond(now)).toBeGreaterThan(45);
    expect(rate.perSecond(now)).toBeLessThan(55);
    expect(rate.perSecond(now + 5000)).toBeLessThan(1);
  });
});
