import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, IsNull, Repository } from 'typeorm';

import { SecretCipherService } from 'src/crypto/secret-cipher.service';

import { CredentialGrantType, EpicCredential } from './entities/epic-credential.entity';
import { ParsedTokenResponse } from './token-response';

/** Encryption context: binds each ciphertext to its row and field. */
const context = (credentialId: string, field: 'access_token' | 'refresh_token'): string =>
  `epic_credential:${credentialId}:${field}`;

/** Renewable without anyone signing in: a stored refresh token, or a client_credentials grant. */
export function isRenewable(credential: Pick<EpicCredential, 'refreshTokenEnc' | 'grantType'>): boolean {
  return credential.refreshTokenEnc !== null || credential.grantType === 'client_credentials';
}

/** Whose connection: an organization's own, or one credential (a user's) by id. */
export type CredentialTarget = { organizationId: string } | { credentialId: string };

/** A stored credential as FHIR calls see it. `accessTokenEnc` is ciphertext: use accessToken(). */
export interface ActiveCredential {
  id: string;
  organizationId: string;
  userId: string | null;
  version: number;
  expiresAt: Date;
  /** When the access token was obtained (null if unknown): caps the refresh margin at half its life. */
  issuedAt: Date | null;
  /** Renewable without anyone signing in: a refresh token is stored, or it came from client_credentials. */
  refreshable: boolean;
  patientId: string | null;
  /** Without a trailing slash. */
  fhirBaseUrl: string;
  /** The connection's last error and sync: the organization's for its own, the credential's for a user's. */
  organizationLastError: string | null;
  organizationLastSync: Date | null;
  accessTokenEnc: string;
}

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

/** Stores Epic tokens encrypted at rest; the only place that encrypts or decrypts them. */
@Injectable()
export class TokenStoreService {
  private readonly decrypted = new Map<string, string>();

  constructor(
    @InjectRepository(EpicCredential) private readonly credentials: Repository<EpicCredential>,
    private readonly cipher: SecretCipherService,
  ) {}

  /** Replaces the organization's own connection (one per organization) inside the caller's transaction. */
  async replaceOrganizationCredential(
    manager: EntityManager,
    organizationId: string,
    tokens: ParsedTokenResponse,
    fhirUser: string | null,
    grantType: CredentialGrantType = 'authorization_code',
  ): Promise<EpicCredential> {
    await manager.delete(EpicCredential, { organizationId, userId: IsNull() });
    const id = randomUUID();
    const credential = manager.create(EpicCredential, {
      id,
      organizationId,
      userId: null,
      purpose: 'organization',
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
      fhirUser,
      grantType,
      version: 1,
    });
    await manager.insert(EpicCredential, credential);
    return credential;
  }

  /**
   * Stores refreshed tokens with compare-and-set on `version`: returns the updated credential, or
   * null when the row was deleted or changed meanwhile (a disconnect or a new connection). Epic's
   * refresh response usually has no refresh_token (https://fhir.epic.com/Documentation?docId=oauth2): the
   * stored one is then kept.
   */
  async rotate(
    manager: EntityManager,
    current: EpicCredential,
    tokens: ParsedTokenResponse,
  ): Promise<EpicCredential | null> {
    const update = {
      accessTokenEnc: this.cipher.encrypt(tokens.accessToken, context(current.id, 'access_token')),
      refreshTokenEnc: tokens.refreshToken
        ? this.cipher.encrypt(tokens.refreshToken, context(current.id, 'refresh_token'))
        : current.refreshTokenEnc,
      expiresAt: tokens.expiresAt,
      issuedAt: tokens.issuedAt,
      // A rolling refresh token inherits the first one's end (Epic: docs/epic-and-smart.md §5) unless the
      // server says otherwise.
      refreshExpiresAt: tokens.refreshToken
        ? (tokens.refreshExpiresAt ?? current.refreshExpiresAt)
        : current.refreshExpiresAt,
      scopes: tokens.scopes.length > 0 ? tokens.scopes.join(' ') : current.scopes,
      version: current.version + 1,
    };
    const result = await manager.update(EpicCredential, { id: current.id, version: current.version }, update);
    if ((result.affected ?? 0) === 0) return null;
    return Object.assign(new EpicCredential(), current, update);
  }

  findById(id: string, manager?: EntityManager): Promise<EpicCredential | null> {
    return (manager ?? this.credentials.manager).findOneBy(EpicCredential, { id });
  }

  /**
   * Ends a user's credential whose grant Epic refused for good, inside the caller's transaction:
   * the tokens are cleared and `endedAt` and the reason recorded, so the user's page can say what
   * happened. Compare-and-set on `version`; false if it was gone or changed.
   */
  async endUserCredential(
    manager: EntityManager,
    credential: EpicCredential,
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

  /** Deletes one credential (this version of it) inside the caller's transaction; false if it was gone. */
  async deleteCredential(manager: EntityManager, credential: EpicCredential): Promise<boolean> {
    const result = await manager.delete(EpicCredential, { id: credential.id, version: credential.version });
    return (result.affected ?? 0) > 0;
  }

  /**
   * What a FHIR call needs, in one indexed query: the credential (without decrypting it) and its
   * organization's FHIR base URL and health fields. Null when there is no connection.
   */
  async findActive(target: CredentialTarget): Promise<ActiveCredential | null> {
    const where = 'organizationId' in target ? 'c.organization_id = $1 AND c.user_id IS NULL' : 'c.id = $1';
    const rows = await this.credentials.query<ActiveCredentialRow[]>(
      `SELECT c.id, c.organization_id, c.user_id, c.version, c.expires_at, c.issued_at, c.access_token_enc,
              c.renewable AS refreshable, c.patient_id,
              o.fhir_base_url,
              CASE WHEN c.user_id IS NULL THEN o.last_error ELSE c.last_error END AS last_error,
              CASE WHEN c.user_id IS NULL THEN o.last_sync ELSE c.last_sync END AS last_sync
         FROM epic_credential c JOIN organization o ON o.id = c.organization_id
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
      organizationLastError: row.last_error,
      organizationLastSync: row.last_sync ? new Date(row.last_sync) : null,
      accessTokenEnc: row.access_token_enc,
    };
  }

  /**
   * The access token of an active credential, for the Authorization header of a call to Epic.
   * Decrypted once per credential version (FHIR calls are frequent; tokens change hourly).
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
      tokens: ParsedTokenResponse;
      fhirUser: string;
      needPatientBanner: boolean | null;
      smartStyleUrl: string | null;
    },
  ): Promise<EpicCredential> {
    await manager.delete(EpicCredential, {
      organizationId: input.organizationId,
      userId: input.userId,
      purpose: input.purpose,
    });
    const id = randomUUID();
    const credential = manager.create(EpicCredential, {
      id,
      organizationId: input.organizationId,
      userId: input.userId,
      purpose: input.purpose,
      accessTokenEnc: this.cipher.encrypt(input.tokens.accessToken, context(id, 'access_token')),
      refreshTokenEnc: input.tokens.refreshToken
        ? this.cipher.encrypt(input.tokens.refreshToken, context(id, 'refresh_token'))
        : null,
      expiresAt: input.tokens.expiresAt,
      issuedAt: input.tokens.issuedAt,
      refreshExpiresAt: input.tokens.refreshExpiresAt,
      scopes: input.tokens.scopes.join(' '),
      patientId: input.tokens.patientId,
      encounterId: input.tokens.encounterId,
      fhirUser: input.fhirUser,
      needPatientBanner: input.needPatientBanner,
      smartStyleUrl: input.smartStyleUrl,
      version: 1,
    });
    await manager.insert(EpicCredential, credential);
    return credential;
  }

  /**
   * Records a user's connection health on their credential (an organization's goes to the
   * organization): lastErrorAt says since when it has been failing, cleared with the error.
   */
  async recordUserConnectionState(
    credentialId: string,
    state: { lastError?: string | null; lastSync?: Date },
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    if (state.lastSync !== undefined) values.lastSync = state.lastSync;
    if (state.lastError !== undefined) {
      values.lastError = state.lastError;
      values.lastErrorAt = state.lastError === null ? null : () => 'COALESCE("last_error_at", now())';
    }
    await this.credentials.update({ id: credentialId }, values);
  }

  /** A user's own credentials, newest first. Metadata only. */
  listUserCredentials(userId: string): Promise<EpicCredential[]> {
    return this.credentials.find({ where: { userId }, order: { createdAt: 'DESC' } });
  }

  /** Deletes a user's own credential; false when it is not theirs or already gone. */
  async deleteUserCredential(userId: string, credentialId: string): Promise<boolean> {
    const result = await this.credentials.delete({ id: credentialId, userId });
    return (result.affected ?? 0) > 0;
  }

  /** A user's credential by id, only if it is theirs (null otherwise). Metadata only. */
  findUserCredential(userId: string, credentialId: string): Promise<EpicCredential | null> {
    return this.credentials.findOneBy({ id: credentialId, userId });
  }

  findOrganizationCredential(organizationId: string): Promise<EpicCredential | null> {
    return this.credentials.findOneBy({ organizationId, userId: IsNull() });
  }

  /** The decrypted refresh token (throws when there is none or it cannot be decrypted). For Epic only. */
  revealRefreshToken(credential: EpicCredential): string {
    if (!credential.refreshTokenEnc) throw new Error('The credential has no refresh token');
    return this.cipher.decrypt(credential.refreshTokenEnc, context(credential.id, 'refresh_token'));
  }

  /** The decrypted tokens of a credential, for calls to Epic only. Never log or return them. */
  reveal(credential: EpicCredential): { accessToken: string; refreshToken: string | null } {
    if (!credential.accessTokenEnc) throw new Error('The credential ended: it has no tokens');
    return {
      accessToken: this.cipher.decrypt(credential.accessTokenEnc, context(credential.id, 'access_token')),
      refreshToken: credential.refreshTokenEnc
        ? this.cipher.decrypt(credential.refreshTokenEnc, context(credential.id, 'refresh_token'))
        : null,
    };
  }

  /** Deletes the organization's own connection; returns whether there was one. Not for use inside a transaction. */
  async deleteOrganizationCredential(organizationId: string): Promise<boolean> {
    const result = await this.credentials.delete({ organizationId, userId: IsNull() });
    return (result.affected ?? 0) > 0;
  }
}
