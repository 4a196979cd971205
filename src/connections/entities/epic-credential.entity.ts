import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

import { CredentialGrantType, CredentialPurpose } from '../connections.types';

/**
 * Tokens from Epic, encrypted at rest (SecretCipherService, bound to this row's id). A null user
 * is the organization's own connection. `version` makes token writes compare-and-set.
 */
@Entity({ name: 'epic_credential' })
export class EpicCredential {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId!: string;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ type: 'varchar', length: 30 })
  purpose!: CredentialPurpose;

  /** The FHIR base the tokens were issued for: they are sent nowhere else, whatever the registration says later. */
  @Column({ name: 'fhir_base_url', type: 'varchar', length: 2048, nullable: true })
  fhirBaseUrl!: string | null;

  /** Null once the credential ended (`endedAt`): a user's dead grant is kept without its tokens. */
  @Column({ name: 'access_token_enc', type: 'text', nullable: true })
  accessTokenEnc!: string | null;

  /**
   * When Epic refused this user's grant for good (the reason is `lastError`); the row stays so the
   * user's page can say so, until they connect again or remove it. Organization credentials are deleted instead.
   */
  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt!: Date | null;

  @Column({ name: 'refresh_token_enc', type: 'text', nullable: true })
  refreshTokenEnc!: string | null;

  /**
   * The grant the tokens came from: client_credentials ones are renewed by the same grant. The
   * database's generated column `renewable` (not mapped here) is StoredCredential.refreshable (token-store.service)
   * for SQL queries.
   */
  @Column({ name: 'grant_type', type: 'varchar', length: 30, default: 'authorization_code' })
  grantType!: CredentialGrantType;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** When the current access token was obtained (null for tokens stored before this was kept). */
  @Column({ name: 'issued_at', type: 'timestamptz', nullable: true })
  issuedAt!: Date | null;

  /** When the refresh token ends, where the server said so (null: unknown or no refresh token). */
  @Column({ name: 'refresh_expires_at', type: 'timestamptz', nullable: true })
  refreshExpiresAt!: Date | null;

  /** Space-separated granted scopes, as Epic returned them. */
  @Column({ type: 'text', default: '' })
  scopes!: string;

  @Column({ name: 'patient_id', type: 'varchar', length: 200, nullable: true })
  patientId!: string | null;

  @Column({ name: 'encounter_id', type: 'varchar', length: 200, nullable: true })
  encounterId!: string | null;

  @Column({ name: 'fhir_user', type: 'varchar', length: 500, nullable: true })
  fhirUser!: string | null;

  /**
   * EHR launch context: whether the app must show its own patient banner (SMART `need_patient_banner`:
   * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
   */
  @Column({ name: 'need_patient_banner', type: 'boolean', nullable: true })
  needPatientBanner!: boolean | null;

  @Column({ name: 'smart_style_url', type: 'varchar', length: 2048, nullable: true })
  smartStyleUrl!: string | null;

  /** A user's connection health (an organization's own is in `organization_connection`). */
  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  @Column({ name: 'last_error_at', type: 'timestamptz', nullable: true })
  lastErrorAt!: Date | null;

  @Column({ name: 'last_sync', type: 'timestamptz', nullable: true })
  lastSync!: Date | null;

  @Column({ type: 'int', default: 1 })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
