import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, In, IsNull, Repository } from 'typeorm';

import { SecretCipherService } from 'src/crypto/secret-cipher.service';

import {
  ActiveCredential,
  CredentialGrantType,
  CredentialTarget,
  StoredCredential,
  TokensToStore,
} from './connections.types';
import { EpicCredential } from './entities/epic-credential.entity';

export type { ActiveCredential, CredentialTarget, StoredCredential } from './connections.types';

/** Encryption context: binds each ciphertext to its row and field. */
const context = (credentialId: string, field: 'access_token' | 'refresh_token'): string =>
  `epic_credential:${credentialId}:${field}`;

interface ActiveCredentialRow {
  id: string;
  organization_id: string;
  user_id: string | null;
  version: number;
  expires_at: Date | string;
  issued_at: Date | string | null;
  access_token_enc: string;
  refreshable: boolean;
  patient_id: string | null;
  fhir_base_url: string | null;
  last_error: string | null;
  last_sync: Date | string | null;
}

const DECRYPTED_CACHE_SIZE = 10_000;

/** The credential changed (new tokens stored) or ended since the caller read it: read it again. */
export class CredentialChangedError extends Error {
  constructor(readonly credentialId: string) {
    super('The credential changed or ended since it was read');
    this.name = 'CredentialChangedError';
  }
}

/** The plain read model of a credential row: everything but its ciphertexts. */
function toStored(row: EpicCredential): StoredCredential {
  return {
    id: row.id,
    organizationId: row.organizationId,
    userId: row.userId,
    purpose: row.purpose,
    grantType: row.grantType,
    fhirBaseUrl: row.fhirBaseUrl,
    expiresAt: row.expiresAt,
    issuedAt: row.issuedAt,
    refreshExpiresAt: row.refreshExpiresAt,
    refreshable: row.refreshTokenEnc !== null || row.grantType === 'client_credentials',
    scopes: row.scopes.split(' ').filter(Boolean),
    patientId: row.patientId,
    encounterId: row.encounterId,
    fhirUser: row.fhirUser,
    needPatientBanner: row.needPatientBanner,
    smartStyleUrl: row.smartStyleUrl,
    endedAt: row.endedAt,
    lastError: row.lastError,
    lastErrorAt: row.lastErrorAt,
    lastSync: row.lastSync,
    version: row.version,
    createdAt: row.createdAt,
  };
}

/**
 * When a user's credential stops working without a sign-in (connection-state.ts `connectionEnd`):
 * the refresh token's announced end if renewable, else the access token's. Written exactly as the
 * partial index of migration 1764150000000, so PostgreSQL uses it.
 */
const RUN_OUT_END = `(CASE WHEN renewable THEN refresh_expires_at ELSE expires_at END)`;

/** A user's live credential that ran out (TokenStoreService.ranOutUserCredentials). */
export interface RanOutCredential {
  id: string;
  organizationId: string;
  userId: string;
  version: number;
  endsAt: Date;
}

/**
 * Stores Epic tokens encrypted at rest: the only place that encrypts or decrypts them, and the
 * only code that reads or writes `epic_credential`. Returns plain read models (StoredCredential,
 * ActiveCredential); tokens leave it only through the reveal methods, for the server that issued them.
 */
@Injectable()
export class TokenStoreService {
  private readonly decrypted = new Map<string, string>();

  constructor(
    @InjectRepository(EpicCredential) private readonly credentials: Repository<EpicCredential>,
    private readonly cipher: SecretCipherService,
  ) {}

  /** Replaces the organization's own credential (one per organization) inside the caller's transaction. */
  async replaceOrganizationCredential(
    manager: EntityManager,
    input: {
      organizationId: string;
      fhirBaseUrl: string;
      tokens: TokensToStore;
      fhirUser: string | null;
      grantType: CredentialGrantType;
    },
  ): Promise<StoredCredential> {
    await manager.delete(EpicCredential, { organizationId: input.organizationId, userId: IsNull() });
    return this.insert(manager, {
      organizationId: input.organizationId,
      userId: null,
      purpose: 'organization',
      fhirBaseUrl: input.fhirBaseUrl,
      tokens: input.tokens,
      fhirUser: input.fhirUser,
      grantType: input.grantType,
    });
  }

  /**
   * Stores a user's own credential from a launch, replacing the one they had for this purpose in
   * this organization (a new EHR launch supersedes the previous one), inside the caller's transaction.
   */
  async replaceUserCredential(
    manager: EntityManager,
    input: {
      organizationId: string;
      userId: string;
      purpose: 'provider' | 'patient';
      fhirBaseUrl: string;
      tokens: TokensToStore;
      fhirUser: string;
      needPatientBanner: boolean | null;
      smartStyleUrl: string | null;
    },
  ): Promise<StoredCredential> {
    await manager.delete(EpicCredential, {
      organizationId: input.organizationId,
      userId: input.userId,
      purpose: input.purpose,
    });
    return this.insert(manager, { ...input, grantType: 'authorization_code' });
  }

  /**
   * Stores refreshed tokens with compare-and-set on `version`: returns the updated credential, or
   * null when the row was deleted or changed meanwhile (a disconnect or a new connection). Epic's
   * refresh response usually has no refresh_token (https://fhir.epic.com/Documentation?docId=oauth2): the
   * stored one is then kept.
   */
  async rotate(
    manager: EntityManager,
    current: StoredCredential,
    tokens: TokensToStore,
  ): Promise<StoredCredential | null> {
    // Without a new refresh token (Epic's usual answer) the stored one, its end and the scopes are kept.
    const update: Partial<EpicCredential> = {
      accessTokenEnc: this.cipher.encrypt(tokens.accessToken, context(current.id, 'access_token')),
      expiresAt: tokens.expiresAt,
      issuedAt: tokens.issuedAt,
      version: current.version + 1,
    };
    if (tokens.refreshToken) {
      update.refreshTokenEnc = this.cipher.encrypt(tokens.refreshToken, context(current.id, 'refresh_token'));
      // A rolling refresh token inherits the first one's end (Epic: docs/epic-and-smart.md §5) unless
      // the server says otherwise.
      update.refreshExpiresAt = tokens.refreshExpiresAt ?? current.refreshExpiresAt;
    }
    if (tokens.scopes.length > 0) update.scopes = tokens.scopes.join(' ');
    const result = await manager.update(EpicCredential, { id: current.id, version: current.version }, update);
    if ((result.affected ?? 0) === 0) return null;
    return {
      ...current,
      expiresAt: tokens.expiresAt,
      issuedAt: tokens.issuedAt,
      refreshExpiresAt: update.refreshExpiresAt ?? current.refreshExpiresAt,
      refreshable: current.refreshable || tokens.refreshToken !== null,
      scopes: tokens.scopes.length > 0 ? tokens.scopes : current.scopes,
      version: current.version + 1,
    };
  }

  async findById(id: string, manager?: EntityManager): Promise<StoredCredential | null> {
    const row = await (manager ?? this.credentials.manager).findOneBy(EpicCredential, { id });
    return row ? toStored(row) : null;
  }

  /**
   * Ends a user's credential whose grant the server refused for good, inside the caller's
   * transaction: the tokens are cleared and `endedAt` and the reason recorded, so the user's page
   * can say what happened. Compare-and-set on `version`; false if it was gone or changed.
   */
  async endUserCredential(
    manager: EntityManager,
    credential: StoredCredential,
    reason: string,
  ): Promise<boolean> {
    const result = await manager.update(
      EpicCredential,
      { id: credential.id, version: credential.version, endedAt: IsNull() },
      {
        accessTokenEnc: null,
        refreshTokenEnc: null,
        endedAt: () => 'now()',
        lastError: reason,
        lastErrorAt: () => 'COALESCE("last_error_at", now())',
        version: credential.version + 1,
      },
    );
    return (result.affected ?? 0) > 0;
  }

  /**
   * A page of users' live credentials that ran out at `now`: not renewable and the access token
   * expired, or renewable and the refresh token's announced end passed (`connectionEnd`). Ordered
   * by (end, id) for keyset paging; a partial expression index (migration 1764150000000) keeps it
   * cheap whatever the number of ended or healthy credentials.
   */
  async ranOutUserCredentials(
    now: Date,
    after: { endsAt: Date; id: string } | null,
    limit: number,
  ): Promise<RanOutCredential[]> {
    const rows = await this.credentials.manager.query<
      { id: string; organization_id: string; user_id: string; version: number; ends_at: Date }[]
    >(
      `SELECT id, organization_id, user_id, version, ${RUN_OUT_END} AS ends_at
         FROM epic_credential
        WHERE user_id IS NOT NULL AND ended_at IS NULL
          AND ${RUN_OUT_END} <= $1
          AND ($2::timestamptz IS NULL OR (${RUN_OUT_END}, id) > ($2::timestamptz, $3::uuid))
        ORDER BY ${RUN_OUT_END}, id
        LIMIT ${Math.max(1, Math.floor(limit))}`,
      [now, after?.endsAt ?? null, after?.id ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      userId: r.user_id,
      version: r.version,
      endsAt: new Date(r.ends_at),
    }));
  }

  /**
   * Ends those of `ids` that are still live user credentials ran out at `now` (the condition is
   * checked again in the UPDATE, so a refresh or a reconnect meanwhile wins): tokens cleared,
   * `endedAt` and a reason recorded, as endUserCredential. The reason tells the two endings apart:
   * `reasons.ranOut` for a renewable credential whose refresh token's announced end passed (a lost
   * connection), `reasons.finished` for one that could never be renewed and reached its natural end
   * (a finished session). Returns the ones ended, each with `finished`.
   */
  async endRanOutUserCredentials(
    manager: EntityManager,
    ids: string[],
    now: Date,
    reasons: { ranOut: string; finished: string },
  ): Promise<{ id: string; organizationId: string; userId: string; finished: boolean }[]> {
    if (ids.length === 0) return [];
    const [rows] = await manager.query<
      [{ id: string; organization_id: string; user_id: string; finished: boolean }[], number]
    >(
      // SET reads the row as it was: `renewable` before the refresh token is cleared.
      `UPDATE epic_credential
          SET access_token_enc = NULL, refresh_token_enc = NULL, ended_at = now(),
              last_error = CASE WHEN renewable THEN $3 ELSE $4 END,
              last_error_at = COALESCE(last_error_at, now()), version = version + 1
        WHERE id = ANY($1::uuid[]) AND user_id IS NOT NULL AND ended_at IS NULL
          AND ${RUN_OUT_END} <= $2
        RETURNING id, organization_id, user_id, last_error = $4 AS finished`,
      [ids, now, reasons.ranOut, reasons.finished],
    );
    return rows.map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      userId: r.user_id,
      finished: r.finished,
    }));
  }

  /**
   * A page of users' credentials that ended at or after `since`, ordered by (ended_at, id) (a
   * partial index): the scheduled check makes sure each ending has its notice.
   */
  async userCredentialsEndedSince(
    since: Date,
    after: { endedAt: Date; id: string } | null,
    limit: number,
  ): Promise<StoredCredential[]> {
    const ids = await this.credentials.manager.query<{ id: string }[]>(
      `SELECT id FROM epic_credential
        WHERE user_id IS NOT NULL AND ended_at IS NOT NULL AND ended_at >= $1
          AND ($2::timestamptz IS NULL OR (ended_at, id) > ($2::timestamptz, $3::uuid))
        ORDER BY ended_at, id
        LIMIT ${Math.max(1, Math.floor(limit))}`,
      [since, after?.endedAt ?? null, after?.id ?? null],
    );
    if (ids.length === 0) return [];
    const rows = await this.credentials.find({
      where: { id: In(ids.map((r) => r.id)) },
      order: { endedAt: 'ASC', id: 'ASC' },
    });
    return rows.map(toStored);
  }

  /** Ends every live user credential of the organization (see endUserCredential); how many ended. */
  async endUserCredentialsOf(
    manager: EntityManager,
    organizationId: string,
    reason: string,
  ): Promise<number> {
    const result = await manager
      .createQueryBuilder()
      .update(EpicCredential)
      .set({
        accessTokenEnc: null,
        refreshTokenEnc: null,
        endedAt: () => 'now()',
        lastError: reason,
        lastErrorAt: () => 'COALESCE("last_error_at", now())',
        version: () => 'version + 1',
      })
      .where('organization_id = :organizationId AND user_id IS NOT NULL AND ended_at IS NULL', {
        organizationId,
      })
      .execute();
    return result.affected ?? 0;
  }

  /** Deletes one credential (this version of it) inside the caller's transaction; false if it was gone. */
  async deleteCredential(manager: EntityManager, credential: StoredCredential): Promise<boolean> {
    const result = await manager.delete(EpicCredential, { id: credential.id, version: credential.version });
    return (result.affected ?? 0) > 0;
  }

  /** Deletes the organization's own credential; returns whether there was one. */
  async deleteOrganizationCredential(organizationId: string, manager?: EntityManager): Promise<boolean> {
    const result = await (manager ?? this.credentials.manager).delete(EpicCredential, {
      organizationId,
      userId: IsNull(),
    });
    return (result.affected ?? 0) > 0;
  }

  /**
   * What a FHIR call needs, in one indexed query: the credential (without decrypting it), the FHIR
   * base it was issued for, and its connection's last error and sync. Null when there is none.
   */
  async findActive(target: CredentialTarget): Promise<ActiveCredential | null> {
    const where = 'organizationId' in target ? 'c.organization_id = $1 AND c.user_id IS NULL' : 'c.id = $1';
    const rows = await this.credentials.query<ActiveCredentialRow[]>(
      `SELECT c.id, c.organization_id, c.user_id, c.version, c.expires_at, c.issued_at, c.access_token_enc,
              c.renewable AS refreshable, c.patient_id, c.fhir_base_url,
              CASE WHEN c.user_id IS NULL THEN s.last_error ELSE c.last_error END AS last_error,
              CASE WHEN c.user_id IS NULL THEN s.last_sync ELSE c.last_sync END AS last_sync
         FROM epic_credential c
         LEFT JOIN organization_connection s ON s.organization_id = c.organization_id AND c.user_id IS NULL
        WHERE ${where} AND c.ended_at IS NULL`,
      ['organizationId' in target ? target.organizationId : target.credentialId],
    );
    const row = rows[0];
    if (!row || !row.fhir_base_url) return null;
    return {
      id: row.id,
      organizationId: row.organization_id,
      userId: row.user_id,
      version: row.version,
      expiresAt: new Date(row.expires_at),
      issuedAt: row.issued_at ? new Date(row.issued_at) : null,
      refreshable: row.refreshable,
      patientId: row.patient_id,
      fhirBaseUrl: row.fhir_base_url.replace(/\/+$/, ''),
      lastError: row.last_error,
      lastSync: row.last_sync ? new Date(row.last_sync) : null,
      accessTokenEnc: row.access_token_enc,
    };
  }

  /**
   * The access token of an active credential, for the Authorization header of a call to the FHIR
   * server. Decrypted once per credential version (FHIR calls are frequent; tokens change hourly).
   */
  accessToken(credential: ActiveCredential): string {
    const key = `${credential.id}:${credential.version}`;
    let token = this.decrypted.get(key);
    if (token === undefined) {
      token = this.cipher.decrypt(credential.accessTokenEnc, context(credential.id, 'access_token'));
      if (this.decrypted.size >= DECRYPTED_CACHE_SIZE) {
        this.decrypted.delete(this.decrypted.keys().next().value!); // oldest first: Map keeps insertion order
      }
      this.decrypted.set(key, token);
    }
    return token;
  }

  /** Records a user's connection health on their credential: lastErrorAt says since when it fails. */
  async recordUserState(
    credentialId: string,
    state: { lastError?: string | null; lastSync?: Date },
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    if (state.lastSync !== undefined) values.lastSync = state.lastSync;
    if (state.lastError !== undefined) {
      values.lastError = state.lastError;
      values.lastErrorAt = state.lastError === null ? null : () => 'COALESCE("last_error_at", now())';
    }
    if (Object.keys(values).length > 0) await this.credentials.update({ id: credentialId }, values);
  }

  /** A user's own credentials, newest first. */
  async listUserCredentials(userId: string): Promise<StoredCredential[]> {
    const rows = await this.credentials.find({ where: { userId }, order: { createdAt: 'DESC' } });
    return rows.map(toStored);
  }

  /**
   * Which of a user's credentials in one organization a call may use: the newest live one's id, and
   * whether they have any there (ended ones included). Two columns of an indexed read, no tokens:
   * the FHIR gateway asks on every request that names a user.
   */
  async userConnectionIn(
    userId: string,
    organizationId: string,
  ): Promise<{ liveCredentialId: string | null; any: boolean }> {
    const rows = await this.credentials.find({
      select: { id: true, endedAt: true },
      where: { userId, organizationId },
      order: { createdAt: 'DESC' },
    });
    return {
      liveCredentialId: rows.find((row) => row.endedAt === null)?.id ?? null,
      any: rows.length > 0,
    };
  }

  /**
   * Deletes a user's own credential; false when it is not theirs or already gone. In `manager`'s
   * transaction when given (a disconnect audits it in the same one).
   */
  async deleteUserCredential(
    userId: string,
    credentialId: string,
    manager?: EntityManager,
  ): Promise<boolean> {
    const result = await (manager ?? this.credentials.manager).delete(EpicCredential, {
      id: credentialId,
      userId,
    });
    return (result.affected ?? 0) > 0;
  }

  /** A user's credential by id, only if it is theirs (null otherwise). */
  async findUserCredential(userId: string, credentialId: string): Promise<StoredCredential | null> {
    const row = await this.credentials.findOneBy({ id: credentialId, userId });
    return row ? toStored(row) : null;
  }

  async findOrganizationCredential(
    organizationId: string,
    manager?: EntityManager,
  ): Promise<StoredCredential | null> {
    const row = await (manager ?? this.credentials.manager).findOneBy(EpicCredential, {
      organizationId,
      userId: IsNull(),
    });
    return row ? toStored(row) : null;
  }

  /**
   * The decrypted tokens of this version of a credential, for a request to the server that issued
   * them only (refresh, revocation). Never log or return them. Throws CredentialChangedError when
   * the credential changed or ended since it was read (a ciphertext it cannot decrypt throws too).
   */
  async reveal(credential: StoredCredential): Promise<{ accessToken: string; refreshToken: string | null }> {
    const row = await this.credentials.findOneBy({ id: credential.id, version: credential.version });
    if (!row?.accessTokenEnc) throw new CredentialChangedError(credential.id);
    return {
      accessToken: this.cipher.decrypt(row.accessTokenEnc, context(row.id, 'access_token')),
      refreshToken: row.refreshTokenEnc
        ? this.cipher.decrypt(row.refreshTokenEnc, context(row.id, 'refresh_token'))
        : null,
    };
  }

  /** The decrypted refresh token (throws when there is none). For the issuing server only. */
  async revealRefreshToken(credential: StoredCredential): Promise<string> {
    const { refreshToken } = await this.reveal(credential);
    if (!refreshToken) throw new Error('The credential has no refresh token');
    return refreshToken;
  }

  /**
   * Claims the credential's refresh lease for `leaseMs` with one statement: granted only if nobody
   * holds a live one and the row is still at the version read. Returns the lease id, or null.
   */
  async claimRefreshLease(current: StoredCredential, leaseMs: number): Promise<string | null> {
    const id = randomUUID();
    const [rows] = await this.credentials.query<[{ id: string }[], number]>(
      `UPDATE epic_credential
          SET refresh_lease_id = $3, refresh_lease_until = now() + $4::double precision * interval '1 millisecond'
        WHERE id = $1 AND version = $2 AND ended_at IS NULL
          AND (refresh_lease_until IS NULL OR refresh_lease_until <= now())
        RETURNING id`,
      [current.id, current.version, id, leaseMs],
    );
    return rows.length === 1 ? id : null;
  }

  /**
   * Clears the lease if it is still `leaseId` (in `manager`'s transaction when given, which then
   * holds the row until it commits). False when it expired and was claimed again, or the row is gone.
   */
  async releaseRefreshLease(
    credentialId: string,
    leaseId: string,
    manager?: EntityManager,
  ): Promise<boolean> {
    const [, affected] = await (manager ?? this.credentials.manager).query<[unknown[], number]>(
      `UPDATE epic_credential SET refresh_lease_id = NULL, refresh_lease_until = NULL
        WHERE id = $1 AND refresh_lease_id = $2`,
      [credentialId, leaseId],
    );
    return affected > 0;
  }

  private async insert(
    manager: EntityManager,
    input: {
      organizationId: string;
      userId: string | null;
      purpose: EpicCredential['purpose'];
      fhirBaseUrl: string;
      tokens: TokensToStore;
      fhirUser: string | null;
      grantType: CredentialGrantType;
      needPatientBanner?: boolean | null;
      smartStyleUrl?: string | null;
    },
  ): Promise<StoredCredential> {
    const id = randomUUID();
    const { tokens } = input;
    const credential = manager.create(EpicCredential, {
      id,
      organizationId: input.organizationId,
      userId: input.userId,
      purpose: input.purpose,
      fhirBaseUrl: input.fhirBaseUrl,
      accessTokenEnc: this.cipher.encrypt(tokens.accessToken, context(id, 'access_token')),
      refreshTokenEnc: tokens.refreshToken
        ? this.cipher.encrypt(tokens.refreshToken, context(id, 'refresh_token'))
        : null,
      expiresAt: tokens.expiresAt,
      issuedAt: tokens.issuedAt,
      refreshExpiresAt: tokens.refreshExpiresAt,
      scopes: tokens.scopes.join(' '),
      patientId: tokens.patientId,
      encounterId: tokens.encounterId,
      fhirUser: input.fhirUser,
      needPatientBanner: input.needPatientBanner ?? null,
      smartStyleUrl: input.smartStyleUrl ?? null,
      grantType: input.grantType,
      version: 1,
      endedAt: null,
      lastError: null,
      lastErrorAt: null,
      lastSync: null,
      createdAt: new Date(),
    });
    await manager.insert(EpicCredential, credential);
    return toStored(credential);
  }
}
