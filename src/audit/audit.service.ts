import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';

import { isSecretKey } from 'src/logging/redact';

import { AuditEvent, AuditOutcome } from './audit-event.entity';

export interface AuditActor {
  id: string;
  email: string;
}

export interface AuditRecord {
  actor: AuditActor | null;
  organization?: { id: string; name: string } | null;
  action: string;
  outcome?: AuditOutcome;
  detail?: Record<string, unknown>;
}

export interface AuditEventView {
  id: string;
  occurredAt: string;
  actor: string | null;
  actorUserId: string | null;
  organizationId: string | null;
  organization: string | null;
  action: string;
  outcome: AuditOutcome;
  detail: Record<string, unknown>;
}

/**
 * Drops secret-named keys at any depth and caps the size, so a detail can never carry a token.
 * Dates, at any depth, become ISO 8601 strings (an invalid one null): walked as objects they would
 * be stored as `{}`.
 */
export function sanitizeDetail(detail: unknown, depth = 0): unknown {
  if (detail instanceof Date) return Number.isNaN(detail.getTime()) ? null : detail.toISOString();
  if (depth > 4) return '[truncated]';
  if (Array.isArray(detail)) return detail.slice(0, 20).map((v) => sanitizeDetail(v, depth + 1));
  if (detail && typeof detail === 'object') {
    return Object.fromEntries(
      Object.entries(detail as Record<string, unknown>)
        .filter(([key]) => !isSecretKey(key))
        .map(([key, value]) => [key, sanitizeDetail(value, depth + 1)]),
    );
  }
  if (typeof detail === 'string' && detail.length > 500) return `${detail.slice(0, 500)}…`;
  return detail;
}

function toView(e: AuditEvent): AuditEventView {
  return {
    id: e.id,
    occurredAt: e.occurredAt.toISOString(),
    actor: e.actorLabel,
    actorUserId: e.actorUserId,
    organizationId: e.organizationId,
    organization: e.organizationLabel,
    action: e.action,
    outcome: e.outcome,
    detail: e.detail,
  };
}

/** The audit trail of connection and administration actions. */
@Injectable()
export class AuditService {
  private readonly logger = new Logger(AuditService.name);

  constructor(@InjectRepository(AuditEvent) private readonly events: Repository<AuditEvent>) {}

  /** Records an event; pass `manager` to write inside the caller's transaction. */
  async record(record: AuditRecord, manager?: EntityManager): Promise<void> {
    const repo = manager ? manager.getRepository(AuditEvent) : this.events;
    const event = repo.create({
      actorUserId: record.actor?.id ?? null,
      actorLabel: record.actor?.email ?? 'system',
      organizationId: record.organization?.id ?? null,
      organizationLabel: record.organization?.name ?? null,
      action: record.action,
      outcome: record.outcome ?? 'success',
      detail: sanitizeDetail(record.detail ?? {}) as Record<string, unknown>,
    });
    await repo.save(event);
    this.logger.log(
      {
        audit: record.action,
        outcome: event.outcome,
        orgId: event.organizationId,
        actorId: event.actorUserId,
      },
      `audit: ${record.action}`,
    );
  }

  /** Newest first; `organizationId` undefined lists every organization's events (root admins). */
  async list(filter: { organizationId?: string; limit?: number; before?: Date }): Promise<AuditEventView[]> {
    const qb = this.events
      .createQueryBuilder('e')
      .orderBy('e.occurred_at', 'DESC')
      .addOrderBy('e.id', 'DESC')
      .take(Math.min(filter.limit ?? 50, 200));
    if (filter.organizationId) qb.andWhere('e.organization_id = :org', { org: filter.organizationId });
    if (filter.before) qb.andWhere('e.occurred_at < :before', { before: filter.before });
    return (await qb.getMany()).map(toView);
  }
}
