import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import * as oidc from 'openid-client';
import { Repository } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';

import { AuthorizationPurpose, hashState, PENDING_TTL_MS, redirectUriFor } from './authorization.types';
import { PendingAuthorization } from './entities/pending-authorization.entity';

/** What a start needs for the authorize request; only the hash of `state` is stored. */
export interface StartedAuthorization {
  state: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
}

/**
 * The `pending_authorization` table: authorizations in flight, stored under the hash of their
 * `state` with the PKCE verifier encrypted, for PENDING_TTL_MS and one use.
 */
@Injectable()
export class PendingAuthorizationStore {
  constructor(
    @InjectRepository(PendingAuthorization) private readonly pending: Repository<PendingAuthorization>,
    private readonly cipher: SecretCipherService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Sweeps abandoned authorizations, then stores a new one: a 256-bit state, a PKCE verifier and a
   * nonce, bound to the starting browser (its binding hash) and, when `sessionId` is set, its session.
   */
  async create(input: {
    purpose: AuthorizationPurpose;
    organizationId: string;
    userId: string | null;
    sessionId: string;
    bindingHash: string;
    now: Date;
  }): Promise<StartedAuthorization> {
    const { now } = input;
    // Sweep abandoned authorizations (kept a day past expiry for the audit of late callbacks).
    await this.pending.query(`DELETE FROM pending_authorization WHERE expires_at < $1`, [
      new Date(now.getTime() - 24 * 3600_000),
    ]);
    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const stateHash = hashState(state);
    const redirectUri = redirectUriFor(this.config.publicBaseUrl);
    await this.pending.insert({
      stateHash,
      organizationId: input.organizationId,
      userId: input.userId,
      sessionId: input.sessionId,
      browserBindingHash: input.bindingHash,
      purpose: input.purpose,
      codeVerifierEnc: this.cipher.encrypt(codeVerifier, verifierContext(stateHash)),
      nonce,
      redirectUri,
      createdAt: now,
      expiresAt: new Date(now.getTime() + PENDING_TTL_MS),
    });
    return { state, codeVerifier, nonce, redirectUri };
  }

  /**
   * Spends the authorization of this `state` (one `UPDATE`, so a replay finds nothing), only for the
   * browser that started it: a callback URL carried to another browser (sign-in CSRF) leaves it
   * unspent. Undefined when there is nothing to spend; the expiry is the caller's to check.
   */
  async consume(state: string, bindingHash: string, now: Date): Promise<PendingAuthorization | undefined> {
    const [rows] = await this.pending.query<[PendingAuthorization[], number]>(
      `UPDATE pending_authorization SET used_at = $2
        WHERE state_hash = $1 AND used_at IS NULL AND browser_binding_hash = $3
       RETURNING organization_id AS "organizationId", user_id AS "userId", session_id AS "sessionId",
                 code_verifier_enc AS "codeVerifierEnc", nonce, redirect_uri AS "redirectUri",
                 expires_at AS "expiresAt", state_hash AS "stateHash", purpose`,
      [hashState(state), now, bindingHash],
    );
    return rows[0];
  }

  /** The unspent authorization of this `state`, whichever browser started it. */
  async findUnspent(
    state: string,
  ): Promise<{ purpose: AuthorizationPurpose; organizationId: string } | undefined> {
    const [other] = await this.pending.query<{ purpose: AuthorizationPurpose; organizationId: string }[]>(
      `SELECT purpose, organization_id AS "organizationId" FROM pending_authorization
        WHERE state_hash = $1 AND used_at IS NULL`,
      [hashState(state)],
    );
    return other;
  }

  /** The PKCE verifier of a consumed authorization, decrypted. */
  codeVerifier(pending: PendingAuthorization): string {
    return this.cipher.decrypt(pending.codeVerifierEnc, verifierContext(pending.stateHash));
  }
}

/** Binds the verifier's ciphertext to its row and field. */
const verifierContext = (stateHash: string): string => `pending_authorization:${stateHash}:code_verifier`;
