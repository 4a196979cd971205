import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

import type { ApiKeyAccess } from '../api-keys.types';

/**
 * One organization's API key for the FHIR gateway. Only the SHA-256 of the key's secret part is
 * stored (`secret_hash`); the key itself is shown once, at creation. `key_id` is public.
 */
@Entity({ name: 'api_key' })
export class ApiKey {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId!: string;

  /** 12 characters of [a-z0-9]; the key reads `ecgk_<keyId>_<secret>`. */
  @Column({ name: 'key_id', type: 'text', unique: true })
  keyId!: string;

  /** SHA-256 of the secret part, lower-case hex (see hashSecret). */
  @Column({ name: 'secret_hash', type: 'text' })
  secretHash!: string;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  @Column({ type: 'text' })
  access!: ApiKeyAccess;

  /** FHIR resource types the key may touch; null: all. */
  @Column({ name: 'resource_types', type: 'text', array: true, nullable: true })
  resourceTypes!: string[] | null;

  @Column({ name: 'user_connections', type: 'boolean', default: false })
  userConnections!: boolean;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt!: Date | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
