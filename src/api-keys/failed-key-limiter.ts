/**
 * Refused API keys per client, in this instance's memory: after `limit` refusals within a window of
 * `windowMs` (counted from the client's first refusal in it), the client is turned away until the
 * window ends, whatever key it presents, and without a database read.
 *
 * Why in memory: the brake exists to spare the database and slow down guessing, so it must cost no
 * database write per refusal (a shared counter would make every bad key a write) and nothing on the
 * success path (one Map lookup, none while no client has failed). The price is accuracy: each
 * instance counts alone, so with N instances behind a balancer a client gets up to N × `limit`
 * refusals per window. Guessing stays hopeless either way: a secret is 256 random bits.
 *
 * Memory is bounded: at most `maxClients` clients are tracked. All windows are equally long and an
 * entry is re-inserted when its window starts, so the Map's order is the order in which windows end:
 * ended windows are pruned from the front, and past the bound the oldest window goes first.
 */
export class FailedKeyLimiter {
  private readonly clients = new Map<string, { failures: number; endsAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxClients = 100_000,
  ) {}

  /** Seconds until `client` may try again (at least 1), or undefined when it is not turned away. */
  blockedFor(client: string, now: number): number | undefined {
    if (this.clients.size === 0) return undefined;
    const entry = this.clients.get(client);
    if (!entry || entry.failures < this.limit) return undefined;
    if (now >= entry.endsAt) {
      this.clients.delete(client);
      return undefined;
    }
    return Math.max(1, Math.ceil((entry.endsAt - now) / 1000));
  }

  /** Counts a refusal; answers true when this one reached the limit (the client is now turned away). */
  recordFailure(client: string, now: number): boolean {
    if (this.limit <= 0) return false;
    const entry = this.clients.get(client);
    if (entry && now < entry.endsAt) {
      entry.failures += 1;
      return entry.failures === this.limit;
    }
    this.clients.delete(client);
    this.clients.set(client, { failures: 1, endsAt: now + this.windowMs });
    this.prune(now);
    return this.limit === 1;
  }

  get size(): number {
    return this.clients.size;
  }

  private prune(now: number): void {
    for (const [client, entry] of this.clients) {
      if (now < entry.endsAt && this.clients.size <= this.maxClients) return;
      this.clients.delete(client);
    }
  }
}
