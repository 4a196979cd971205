import { Column, Entity, PrimaryColumn } from 'typeorm';

/** organization: an admin connects it; provider: an EHR launch; patient: a standalone patient launch. */
export type AuthorizationPurpose = 'organization' | 'provider' | 'patient';

/**
 * An authorization request in flight. Keyed by the SHA-256 of `state`, so the table alone cannot
 * be used to forge a callback; the PKCE verifier is encrypted. Single use, 10 minutes, and bound
 * to the session that started it (RFC 9700 §2.1: CSRF protection with state bound to the user agent).
 */
@Entity({ name: 'pending_authorization' })
export class PendingAuthorization {
  @PrimaryColumn({ name: 'state_hash', type: 'varchar', length: 64 })
  stateHash!: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId!: string;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ name: 'session_id', type: 'varchar', length: 255 })
  sessionId!: string;

  @Column({ type: 'varchar', length: 30 })
  purpose!: AuthorizationPurpose;

  @Column({ name: 'code_verifier_enc', type: 'text' })
  codeVerifierEnc!: string;

  @Column({ type: 'varchar', length: 100, nullable: true })
  nonce!: string | null;

  @Column({ name: 'redirect_uri', type: 'varchar', length: 2048 })
  redirectUri!: string;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  /** SHA-256 of the starting browser's binding cookie (browser-binding.ts); the callback must match. */
  @Column({ name: 'browser_binding_hash', type: 'varchar', length: 64, nullable: true })
  browserBindingHash!: string | null;
}
