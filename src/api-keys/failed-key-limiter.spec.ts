import { FailedKeyLimiter } from './failed-key-limiter';

describe('FailedKeyLimiter', () => {
  const WINDOW = 60_000;

  it('turns a client away after the limit of refusals, until its window ends', () => {
    const sut = new FailedKeyLimiter(3, WINDOW);
    expect(sut.recordFailure('a', 1_000)).toBe(false);
    expect(sut.recordFailure('a', 2_000)).toBe(false);
    expect(sut.blockedFor('a', 2_000)).toBeUndefined();
    expect(sut.recordFailure('a', 3_000)).toBe(true);
    // The window runs from the first refusal (1 s): 59 s left at 2 s past it.
    expect(sut.blockedFor('a', 3_000)).toBe(58);
    expect(sut.blockedFor('a', 60_500)).toBe(1);
    expect(sut.blockedFor('a', 61_000)).toBeUndefined();
    // A new window starts from nothing.
    expect(sut.recordFailure('a', 61_000)).toBe(false);
    expect(sut.blockedFor('a', 61_000)).toBeUndefined();
  });

  it('counts each client apart', () => {
    const sut = new FailedKeyLimiter(2, WINDOW);
    sut.recordFailure('a', 0);
    sut.recordFailure('a', 0);
    sut.recordFailure('b', 0);
    expect(sut.blockedFor('a', 10)).toBe(60);
    expect(sut.blockedFor('b', 10)).toBeUndefined();
    expect(sut.blockedFor('c', 10)).toBeUndefined();
  });

  it('reports reaching the limit once per window', () => {
    const sut = new FailedKeyLimiter(2, WINDOW);
    expect([0, 1, 2, 3].map((at) => sut.recordFailure('a', at))).toEqual([false, true, false, false]);
  });

  it('never turns anyone away with a limit of 0', () => {
    const sut = new FailedKeyLimiter(0, WINDOW);
    for (let i = 0; i < 100; i++) expect(sut.recordFailure('a', i)).toBe(false);
    expect(sut.blockedFor('a', 100)).toBeUndefined();
    expect(sut.size).toBe(0);
  });

  it('forgets ended windows and keeps at most maxClients, the oldest window going first', () => {
    const sut = new FailedKeyLimiter(1, WINDOW, 3);
    sut.recordFailure('a', 0);
    sut.recordFailure('b', 1);
    sut.recordFailure('c', 2);
    sut.recordFailure('d', 3);
    expect(sut.size).toBe(3);
    expect(sut.blockedFor('a', 4)).toBeUndefined();
    expect(sut.blockedFor('d', 4)).toBe(60);
    sut.recordFailure('e', WINDOW + 2); // b and c ended: pruned
    expect(sut.size).toBe(2);
    expect(sut.blockedFor('d', WINDOW + 2)).toBe(1);
  });
});
