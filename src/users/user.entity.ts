import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

import { Role } from './user.types';

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
