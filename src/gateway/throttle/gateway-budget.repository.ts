import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { isForeignKeyViolation } from 'src/database/pg-errors';
import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import { LEASE_PERIOD_MS, RESERVE_AHEAD_MS, SLOT_LEASE_TTL_MS, SLOT_TURN_MS } from './throttle-policy';

/** What one instance asks of an organization's shared budget in one lease. */
export interface LeaseRequest {
  /** Tokens wanted now (0: only renew the slot lease); the database grants at most one batch. */
  want: number;
  /** Requests in flight plus waiting on this instance: its claim on the concurrency limit. */
  demand: number;
  /** Requests in flight on this instance: the slots it cannot give back yet. */
  inFlight: number;
}

/** The organization's budget after the lease, as seen by this instance. */
export interface LeaseResult {
  granted: number;
  /** Tokens left in the shared bucket after this grant (negative: reserved ahead of the refill). */
  tokensLeft: number;
  /** Milliseconds until the granted tokens are paid for by the refill: start no request before. */
  validInMs: number;
  ratePerSecond: number;
  concurrency: number;
  /** Slots the database now holds for this instance (never fewer than its requests in flight). */
  slots: number;
  /** Slots this instance may fill: its fair share, capped by what the other instances leave free. */
  slotTarget: number;
  /** Its fair share: all its demand when the total fits the limit, else the limit split by demand. */
  slotShare: number;
  /** Milliseconds until an upstream pause ends (0: not paused). */
  pausedMs: number;
  /** Milliseconds until the seats left over by proportional shares pass on (SLOT_TURN_MS). */
  turnLeftMs: number;
}

interface LeaseRow {
  granted: number;
  tokens_left: number;
  valid_in_ms: number;
  rate: number;
  conc: number;
  slots: number;
  slot_target: number;
  slot_share: number;
  turn_left_ms: number;
  paused_ms: number;
}

/**
 * One lease, in one statement on the organization's `gateway_budget` row (the row lock serializes
 * instances; re-evaluated on the newest row version, so no grant is counted twice):
 *
 * - rate: a token bucket refilled at the organization's rate (its override, else the default) up
 *   to two batches. A lease takes min(want, one batch), also when the bucket holds less: it then
 *   reserves tokens the refill will pay for (the bucket goes negative, at most RESERVE_AHEAD_MS of
 *   the rate), and `valid_in_ms` says when the last of them is paid; the instance starts those
 *   requests no earlier. So a starved instance needs one lease per batch (not a poll per crumb),
 *   instances are served first come first served, and no token is used before it is refilled.
 *   While an upstream pause lasts nothing is granted, and `refilled_at` lies at its end.
 * - concurrency: `slot_leases` maps each live instance to { n: slots held, t: its target, f: its
 *   fair share, d: its demand, until: lease end (epoch s) }. Lapsed entries are dropped. When the
 *   total demand fits the limit, each instance's share is its demand; else the limit is split in
 *   proportion to demand, rounded down, and the seats the rounding leaves go round robin: each
 *   busy instance's position (by id) plus the turn number (it changes every SLOT_TURN_MS), modulo
 *   their count, ranks it; the first `spare` ranks get one more. So the shares sum to the limit,
 *   and with a limit below the number of busy instances each gets its turn.
 *   The target is the share capped by what the others hold; the instance records max(in flight,
 *   target), so the sum of `n` never exceeds the limit (one over its share gives slots back as its
 *   requests end, and the others take them at their next lease).
 *
 * Parameters: $1 organization, $2 default rate, $3 default concurrency, $4 instance, $5 demand,
 * $6 in flight, $7 tokens wanted, $8 lease TTL (s), $9 lease period (ms), $10 turn (ms),
 * $11 how far ahead tokens may be reserved (ms).
 */
const LEASE_SQL = `
  WITH lim AS (
    SELECT COALESCE(l.rate_per_second, $2::int) AS rate, COALESCE(l.concurrency, $3::int) AS conc
      FROM (SELECT 1) AS one
      LEFT JOIN gateway_limits l ON l.organization_id = $1
  ), leased AS (
    UPDATE gateway_budget AS b
       SET (tokens, refilled_at, granted, slot_leases) = (
         SELECT refill.level - bucket.taken, GREATEST(b.refilled_at, now()), bucket.taken,
                live.leases || mine.entry
           FROM (SELECT GREATEST(1, ceil(lim.rate * $9::int / 1000.0))::int AS batch) AS size,
                (SELECT floor(EXTRACT(EPOCH FROM now()) * 1000 / $10::int)::bigint AS n) AS turn,
                LATERAL (SELECT LEAST(2 * size.batch, COALESCE(b.tokens, 2 * size.batch)
                           + lim.rate * GREATEST(0, EXTRACT(EPOCH FROM now() - b.refilled_at))::double precision)
                           AS level) AS refill,
                LATERAL (SELECT CASE WHEN b.paused_until > now() THEN 0
                                     ELSE GREATEST(0, LEAST($7::int, size.batch,
                                                            floor(refill.level + lim.rate * $11::int / 1000.0)))
                                 END::int AS taken) AS bucket,
                LATERAL (SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}'::jsonb) AS leases,
                                COALESCE(sum((e.value ->> 'n')::int), 0)::int AS n,
                                COALESCE(sum((e.value ->> 'd')::int), 0)::int AS d
                           FROM jsonb_each(b.slot_leases) AS e
                          WHERE e.key <> $4::text
                            AND (e.value ->> 'until')::double precision > EXTRACT(EPOCH FROM now())) AS live,
                LATERAL (SELECT live.d + $5::int AS total) AS demand,
                LATERAL (SELECT CASE WHEN demand.total <= lim.conc THEN $5::int
                                     ELSE floor(lim.conc::numeric * $5::int / demand.total)::int END AS base) AS floor_share,
                LATERAL (SELECT (lim.conc - floor_share.base - COALESCE(sum(
                                   floor(lim.conc::numeric * (e.value ->> 'd')::int / demand.total)), 0))::int AS spare,
                                count(*) FILTER (WHERE (e.value ->> 'd')::int > 0
                                                   AND e.key COLLATE "C" < $4::text COLLATE "C")::int AS below,
                                count(*) FILTER (WHERE (e.value ->> 'd')::int > 0)::int AS busy
                           FROM jsonb_each(live.leases) AS e) AS seats,
                LATERAL (SELECT floor_share.base
                                + CASE WHEN demand.total > lim.conc AND $5::int > 0
                                        AND (seats.below + turn.n) % (seats.busy + 1) < seats.spare
                                       THEN 1 ELSE 0 END AS fair) AS share,
                LATERAL (SELECT GREATEST(0, LEAST(share.fair, lim.conc - live.n)) AS target) AS slot,
                LATERAL (SELECT CASE WHEN $5::int > 0 OR $6::int > 0
                                     THEN jsonb_build_object($4::text, jsonb_build_object(
                                            'n', GREATEST($6::int, slot.target), 't', slot.target,
                                            'f', share.fair, 'd', $5::int,
                                            'until', EXTRACT(EPOCH FROM now()) + $8::double precision))
                                     ELSE '{}'::jsonb END AS entry) AS mine)
      FROM lim
     WHERE b.organization_id = $1
     RETURNING b.granted, b.tokens AS tokens_left, lim.rate, lim.conc,
               (GREATEST(0, -b.tokens) / lim.rate * 1000
                 + GREATEST(0, EXTRACT(EPOCH FROM b.refilled_at - now()) * 1000))::double precision AS valid_in_ms,
               COALESCE((b.slot_leases -> $4::text ->> 'n')::int, 0) AS slots,
               COALESCE((b.slot_leases -> $4::text ->> 't')::int, 0) AS slot_target,
               COALESCE((b.slot_leases -> $4::text ->> 'f')::int, 0) AS slot_share,
               ($10::int - floor(EXTRACT(EPOCH FROM now()) * 1000)::bigint % $10::int)::int AS turn_left_ms,
               COALESCE(GREATEST(0, EXTRACT(EPOCH FROM b.paused_until - now()) * 1000), 0)::double precision
                 AS paused_ms
  )
  SELECT * FROM leased`;

/**
 * The shared budget of each organization's gateway traffic (`gateway_budget`): the rate's token
 * bucket, the concurrency slots each instance leases, and the pause after an upstream 429. Every
 * method is one short statement (no transaction is held while anyone waits).
 */
@Injectable()
export class GatewayBudgetRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Takes tokens and renews this instance's slot lease, in one statement (the row is made if missing). */
  async lease(
    organizationId: string,
    instanceId: string,
    defaults: { ratePerSecond: number; concurrency: number },
    request: LeaseRequest,
  ): Promise<LeaseResult> {
    const params = [
      organizationId,
      defaults.ratePerSecond,
      defaults.concurrency,
      instanceId,
      request.demand,
      request.inFlight,
      request.want,
      SLOT_LEASE_TTL_MS / 1000,
      LEASE_PERIOD_MS,
      SLOT_TURN_MS,
      RESERVE_AHEAD_MS,
    ];
    let rows = await this.dataSource.query<LeaseRow[]>(LEASE_SQL, params);
    if (rows.length === 0) {
      // The organization's first lease: a full bucket (tokens NULL), then lease again.
      await this.create(organizationId);
      rows = await this.dataSource.query<LeaseRow[]>(LEASE_SQL, params);
    }
    const [row] = rows;
    if (!row) throw new Error(`gateway_budget row of organization ${organizationId} vanished`);
    return {
      granted: row.granted,
      tokensLeft: row.tokens_left,
      validInMs: row.valid_in_ms,
      ratePerSecond: row.rate,
      concurrency: row.conc,
      slots: row.slots,
      slotTarget: row.slot_target,
      slotShare: row.slot_share,
      pausedMs: row.paused_ms,
      turnLeftMs: row.turn_left_ms,
    };
  }

  /**
   * Pauses the organization for `seconds` (a pause only ever grows): the bucket is emptied and
   * refills from the pause's end, so no burst follows it. Returns the milliseconds left.
   */
  async pause(organizationId: string, seconds: number): Promise<number> {
    const [row] = await this.guard(
      this.dataSource.query<{ paused_ms: number }[]>(
        `INSERT INTO gateway_budget AS b (organization_id, tokens, refilled_at, paused_until)
         VALUES ($1, 0, now() + make_interval(secs => $2), now() + make_interval(secs => $2))
         ON CONFLICT (organization_id) DO UPDATE
            SET tokens = 0,
                refilled_at = GREATEST(b.refilled_at, EXCLUDED.refilled_at),
                paused_until = GREATEST(b.paused_until, EXCLUDED.paused_until)
         RETURNING GREATEST(0, EXTRACT(EPOCH FROM b.paused_until - now()) * 1000)::double precision AS paused_ms`,
        [organizationId, seconds],
      ),
    );
    return row.paused_ms;
  }

  /** Gives back every slot this instance leases for these organizations (at shutdown). */
  async releaseSlots(instanceId: string, organizationIds: string[]): Promise<void> {
    if (organizationIds.length === 0) return;
    await this.dataSource.query(
      `UPDATE gateway_budget SET slot_leases = slot_leases - $1::text
        WHERE organization_id = ANY($2::uuid[]) AND slot_leases -> $1::text IS NOT NULL`,
      [instanceId, organizationIds],
    );
  }

  private async create(organizationId: string): Promise<void> {
    await this.guard(
      this.dataSource.query(
        `INSERT INTO gateway_budget (organization_id) VALUES ($1) ON CONFLICT (organization_id) DO NOTHING`,
        [organizationId],
      ),
    );
  }

  /** An organization that does not exist (or was deleted meanwhile) is a 404, not a 500. */
  private async guard<T>(statement: Promise<T>): Promise<T> {
    try {
      return await statement;
    } catch (error) {
      if (isForeignKeyViolation(error)) {
        throw new DomainError(ErrorCode.NotFound, 'Organization not found', { cause: error });
      }
      throw error;
    }
  }
}
