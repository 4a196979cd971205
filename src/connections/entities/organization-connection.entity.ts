import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

import { ConnectionState } from '../connections.types';

/**
 * An organization's own Epic connection: whether it is connected, when its last token ends, its
 * last sync and failure, and the state its admins were last told about. One row per organization,
 * created by the first outcome recorded (no row reads as never connected). Its tokens are its
 * `epic_credential` row with a null user.
 */
@Entity({ name: 'organization_connection' })
export class OrganizationConnection {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId!: string;

  @Column({ name: 'is_connected', type: 'boolean', default: false })
  isConnected!: boolean;

  /** When the last stored access token ends: kept when dead tokens are cleared, emptied by a disconnect. */
  @Column({ name: 'token_expiry', type: 'timestamptz', nullable: true })
  tokenExpiry!: Date | null;

  @Column({ name: 'last_sync', type: 'timestamptz', nullable: true })
  lastSync!: Date | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  /** Since when it has been failing: kept while failures go on, cleared with the error. */
  @Column({ name: 'last_error_at', type: 'timestamptz', nullable: true })
  lastErrorAt!: Date | null;

  /** The state the organization's admins were last told about (null: never evaluated). */
  @Column({ name: 'notified_state', type: 'varchar', length: 20, nullable: true })
  notifiedState!: ConnectionState | null;

  @Column({ name: 'notified_state_at', type: 'timestamptz', nullable: true })
  notifiedStateAt!: Date | null;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
