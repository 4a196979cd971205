import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

import { ContactEmailSource, Role } from './user.types';

export { Role };

/** A person who signs in. Every role but root admin belongs to exactly one organization. */
@Entity({ name: 'app_user' })
export class User {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Unique case-insensitively (index on lower(email)); stored as entered. */
  @Column({ type: 'varchar', length: 320 })
  email!: string;

  /** scrypt hash (PasswordHasher); null for users who only sign in through SMART. */
  @Column({ name: 'password_hash', type: 'text', nullable: true })
  passwordHash!: string | null;

  @Column({ type: 'varchar', length: 20 })
  role!: Role;

  @Column({ name: 'organization_id', type: 'uuid', nullable: true })
  organizationId!: string | null;

  /** For provider and patient users: the `fhirUser` of their verified id_token (Practitioner/…, Patient/…). */
  @Column({ name: 'fhir_user', type: 'varchar', length: 500, nullable: true })
  fhirUser!: string | null;

  /**
   * Providers and patients: where they are emailed about their own connections (never the
   * `…@launch.invalid` placeholder in `email`). From the verified id_token's `email` claim, or
   * entered by them; `contactEmailSource` says which.
   */
  @Column({ name: 'contact_email', type: 'varchar', length: 320, nullable: true })
  contactEmail!: string | null;

  /** `id_token` (the launch's claim) or `entered` (by the user: a later claim does not replace it); null: never set. */
  @Column({ name: 'contact_email_source', type: 'varchar', length: 10, nullable: true })
  contactEmailSource!: ContactEmailSource | null;

  /**
   * When the contact address was confirmed: the link emailed to an entered address was opened, or
   * the address came from a verified id_token. Null: waiting for confirmation, not emailed.
   */
  @Column({ name: 'contact_email_confirmed_at', type: 'timestamptz', nullable: true })
  contactEmailConfirmedAt!: Date | null;

  @Column({ type: 'boolean', default: false })
  disabled!: boolean;

  @Column({ name: 'must_change_password', type: 'boolean', default: false })
  mustChangePassword!: boolean;

  @Column({ name: 'last_login_at', type: 'timestamptz', nullable: true })
  lastLoginAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
