import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, IsNull, QueryFailedError, Repository } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { DbLockService } from 'src/database/db-lock.service';
import { OrganizationDeletedEvent, OrganizationEvents } from 'src/organizations/organizations.events';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { generateApiKey } from './api-key-format';
import { ApiKeyVerifier } from './api-key-verifier';
import { apiKeyState, auditDetail, toApiKeyView } from './api-key.view';
import {
  ApiKeyAuditAction,
  type ApiKeyAccess,
  type ApiKeyPrincipal,
  type ApiKeyView,
  type CreatedApiKey,
} from './api-keys.types';
import { CreateApiKeyDto, UpdateApiKeyDto } from './dto/api-key.dto';
import { ApiKey } from './entities/api-key.entity';

// The gateway's contract types, importable from the service too.
export type { ApiKeyAccess, ApiKeyPrincipal, ApiKeyView, CreatedApiKey } from './api-keys.types';

/** Keys not revoked (active or expired) one organization may hold. */
export const MAX_UNREVOKED_KEYS = 100;
/** The most keys `list` returns (newest first); revoked ones stay listed as history. */
const LISTED_MAX = 500;

const isKeyIdClash = (e: unknown): boolean =>
  e instanceof QueryFailedError &&
  (e.driverError as { code?: string; constraint?: string }).code === '23505' &&
  (e.driverError as { constraint?: string }).constraint === 'uq_api_key_key_id';

/**
 * The advisory lock creates of one organization's keys take turns under. Revoking needs no lock: it
 * only lowers the count, so a create that counted before it is at worst one too strict.
 */
const capLockKey = (orgId: string): string => `api-key-cap:${orgId}`;

const notFound = (): DomainError => new DomainError(ErrorCode.NotFound, 'API key not found');

/** 409 for a change to a key that has ended: revoked, or expired (which is as final). */
const ended = (state: 'revoked' | 'expired'): DomainError =>
  new DomainError(
    ErrorCode.Conflict,
    `This API key is ${state} and cannot be changed. Create a new key instead.`,
  );

/**
 * API keys: one organization's service credentials for the FHIR gateway. Org admins and root
 * admins create, change and revoke them (audited, never with the secret); the gateway calls
 * `authenticate` with the presented key and `recordUse` after it served a request.
 * @see src/api-keys/README.md
 */
@Injectable()
export class ApiKeysService {
  constructor(
    @InjectRepository(ApiKey) private readonly keys: Repository<ApiKey>,
    private readonly dataSource: DataSource,
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly verifier: ApiKeyVerifier,
    private readonly locks: DbLockService,
  ) {}

  /**
   * The principal of `presented`, the raw token of `Authorization: Bearer …`. Throws 401
   * UNAUTHENTICATED with one message for every refusal (malformed, unknown, wrong secret, revoked,
   * expired). The secret is compared in constant time; a verified key is reused from memory for at
   * most API_KEY_CACHE_SECONDS, so a revocation is honoured on every instance within that time.
   * With `clientIp` (the caller's address, `req.ip`), a client that presented API_KEY_FAILURE_LIMIT
   * guessed keys (malformed, unknown, wrong secret; not the right secret of a revoked or expired key)
   * within API_KEY_FAILURE_WINDOW_SECONDS gets 429 RATE_LIMITED (Retry-After) for any key not held in
   * memory, until the window ends: counted in memory, per instance.
   */
  authenticate(presented: string, clientIp?: string): Promise<ApiKeyPrincipal> {
    return this.verifier.authenticate(presented, clientIp);
  }

  /** Records that the key served a request: `last_used_at`, at most once a minute per key and instance; never throws. */
  recordUse(principal: ApiKeyPrincipal): void {
    this.verifier.recordUse(principal);
  }

  /** The organization's keys, newest first (404 for an unknown organization). */
  async list(orgId: string): Promise<ApiKeyView[]> {
    await this.organizations.get(orgId);
    const rows = await this.keys.find({
      where: { organizationId: orgId },
      order: { createdAt: 'DESC', keyId: 'ASC' },
      take: LISTED_MAX,
    });
    const now = new Date();
    return rows.map((row) => toApiKeyView(row, now));
  }

  /** One key of the organization; another organization's key is a 404 like an unknown one. */
  async get(orgId: string, keyId: string): Promise<ApiKeyView> {
    await this.organizations.get(orgId);
    const row = await this.keys.findOneBy({ organizationId: orgId, keyId });
    if (!row) throw notFound();
    return toApiKeyView(row, new Date());
  }

  /**
   * Creates a key and returns it with the whole key string (`secret`), which exists only in this
   * answer: the database keeps its SHA-256. Audited as `api-key.created`. The cap of
   * MAX_UNREVOKED_KEYS is exact: creates for one organization take turns (a transaction-scoped
   * advisory lock per organization, on every instance), so two racing creates cannot both pass it.
   */
  async create(actor: AuditActor, orgId: string, dto: CreateApiKeyDto): Promise<CreatedApiKey> {
    const org = await this.organizations.get(orgId);
    // A clash of two random 12-character ids (36^12) is next to impossible; draw again if it happens.
    for (let attempt = 1; ; attempt++) {
      const generated = generateApiKey();
      try {
        const key = await this.locks.withLock(capLockKey(orgId), async (manager) => {
          const unrevoked = await manager.countBy(ApiKey, { organizationId: orgId, revokedAt: IsNull() });
          if (unrevoked >= MAX_UNREVOKED_KEYS) {
            throw new DomainError(
              ErrorCode.Conflict,
              `An organization can hold at most ${MAX_UNREVOKED_KEYS} API keys that are not revoked. Revoke one first.`,
            );
          }
          const saved = await manager.save(
            manager.create(ApiKey, {
              organizationId: orgId,
              keyId: generated.keyId,
              secretHash: generated.secretHash,
              name: dto.name,
              access: dto.access ?? 'read',
              resourceTypes: normalizeResourceTypes(dto.resourceTypes),
              userConnections: dto.userConnections ?? false,
              expiresAt: dto.expiresAt ? new Date(dto.expiresAt) : null,
              revokedAt: null,
              lastUsedAt: null,
              createdBy: actor.id,
            }),
          );
          await this.record(manager, actor, org, ApiKeyAuditAction.Created, saved);
          return saved;
        });
        return { key: toApiKeyView(key, new Date()), secret: generated.token };
      } catch (error) {
        if (attempt < 3 && isKeyIdClash(error)) continue;
        throw error;
      }
    }
  }

  /**
   * Changes what a key may do, its name or its expiry (absent fields are kept; `null` clears
   * `resourceTypes` to all and `expiresAt` to never). A revoked or expired key has ended and cannot be
   * changed (409 CONFLICT): in particular an expired key cannot be given a new expiry, so a leaked
   * old key never comes back.
   * Audited as `api-key.updated` with the fields that changed; takes effect here at once and on
   * other instances within API_KEY_CACHE_SECONDS.
   */
  async update(actor: AuditActor, orgId: string, keyId: string, dto: UpdateApiKeyDto): Promise<ApiKeyView> {
    const org = await this.organizations.get(orgId);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const key = await this.lockedKey(manager, orgId, keyId);
        const state = apiKeyState(key, new Date());
        if (state !== 'active') throw ended(state);
        const changed = applyChanges(key, dto);
        if (changed.length > 0) {
          await manager.save(key);
          await this.record(manager, actor, org, ApiKeyAuditAction.Updated, key, { changed });
        }
        return toApiKeyView(key, new Date());
      });
    } finally {
      this.verifier.forget(keyId); // after the commit: a read now sees the change
    }
  }

  /**
   * Revokes a key for good: refused here at once, on other instances within
   * API_KEY_CACHE_SECONDS. Revoking a revoked key changes nothing and is not audited again.
   */
  async revoke(actor: AuditActor, orgId: string, keyId: string): Promise<ApiKeyView> {
    const org = await this.organizations.get(orgId);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const key = await this.lockedKey(manager, orgId, keyId);
        if (!key.revokedAt) {
          key.revokedAt = new Date();
          await manager.save(key);
          await this.record(manager, actor, org, ApiKeyAuditAction.Revoked, key);
        }
        return toApiKeyView(key, new Date());
      });
    } finally {
      this.verifier.forget(keyId);
    }
  }

  /**
   * An organization deleted on this instance: its keys went with it (ON DELETE CASCADE), and this
   * instance forgets them at once. Other instances hear nothing and refuse them within
   * API_KEY_CACHE_SECONDS, as they do a revocation made elsewhere.
   */
  @OnEvent(OrganizationEvents.Deleted)
  onOrganizationDeleted(event: OrganizationDeletedEvent): void {
    this.verifier.forgetOrganization(event.organizationId);
  }

  /** The organization's key, locked for this transaction; 404 when there is none (or it is another organization's). */
  private async lockedKey(manager: EntityManager, orgId: string, keyId: string): Promise<ApiKey> {
    const key = await manager.findOne(ApiKey, {
      where: { organizationId: orgId, keyId },
      lock: { mode: 'pessimistic_write' },
    });
    if (!key) throw notFound();
    return key;
  }

  private record(
    manager: EntityManager,
    actor: AuditActor,
    organization: { id: string; name: string },
    action: ApiKeyAuditAction,
    key: ApiKey,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    return this.audit.record(
      { actor, organization, action, detail: { ...auditDetail(key), ...extra } },
      manager,
    );
  }
}

/** Each type once, in the order given; null (all types) stays null. */
function normalizeResourceTypes(types: string[] | null | undefined): string[] | null {
  return types ? [...new Set(types)] : null;
}

/** Applies the given fields to `key`; returns the names of those whose value changed. */
function applyChanges(key: ApiKey, dto: UpdateApiKeyDto): string[] {
  const changed: string[] = [];
  if (dto.name !== undefined && dto.name !== key.name) {
    key.name = dto.name;
    changed.push('name');
  }
  if (dto.access !== undefined && dto.access !== key.access) {
    key.access = dto.access satisfies ApiKeyAccess;
    changed.push('access');
  }
  if (dto.resourceTypes !== undefined) {
    const types = normalizeResourceTypes(dto.resourceTypes);
    if (JSON.stringify(types) !== JSON.stringify(key.resourceTypes)) {
      key.resourceTypes = types;
      changed.push('resourceTypes');
    }
  }
  if (dto.userConnections !== undefined && dto.userConnections !== key.userConnections) {
    key.userConnections = dto.userConnections;
    changed.push('userConnections');
  }
  if (dto.expiresAt !== undefined) {
    const expiresAt = dto.expiresAt === null ? null : new Date(dto.expiresAt);
    if ((expiresAt?.getTime() ?? null) !== (key.expiresAt?.getTime() ?? null)) {
      key.expiresAt = expiresAt;
      changed.push('expiresAt');
    }
  }
  return changed;
}
