import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, IsNull, Repository } from 'typeorm';

import { SecretCipherService } from 'src/crypto/secret-cipher.service';

import { EpicCredential } from './entities/epic-credential.entity';
import { ParsedTokenResponse } from './token-response';

/** Encryption context: binds each ciphertext to its row and field. */
const context = (credentialId: string, field: 'access_token' | 'refresh_token'): string =>
  `epic_credential:${credentialId}:${field}`;

/** Stores Epic tokens encrypted at rest; the only place that encrypts or decrypts them. */
@Injectable()
export class TokenStoreService {
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
      scopes: tokens.scopes.join(' '),
      patientId: tokens.patientId,
      encounterId: tokens.encounterId,
      fhirUser,
      version: 1,
    });
    await manager.insert(EpicCredential, credential);
    return credential;
  }

  findOrganizationCredential(organizationId: string): Promise<EpicCredential | null> {
    return this.credentials.findOneBy({ organizationId, userId: IsNull() });
  }

  /** The decrypted tokens of a credential, for calls to Epic only. Never log or return them. */
  reveal(credential: EpicCredential): { accessToken: string; refreshToken: string | null } {
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
