import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { ConnectionState } from 'src/connections/connections.types';

export type NotificationKind = 'attention' | 'resolved';

/** A notice to an organization's admins that its connection changed state (once per transition). */
@Entity({ name: 'notification' })
export class Notification {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId!: string;

  @Column({ type: 'varchar', length: 20 })
  kind!: NotificationKind;

  @Column({ type: 'varchar', length: 20 })
  state!: ConnectionState;

  @Column({ name: 'previous_state', type: 'varchar', length: 20, nullable: true })
  previousState!: ConnectionState | null;

  @Column({ type: 'varchar', length: 300 })
  title!: string;

  @Column({ type: 'text' })
  message!: string;

  /** Where to act: the re-connect page or the organization page (absolute URL). */
  @Column({ type: 'varchar', length: 500, nullable: true })
  link!: string | null;

  /** Email recipients still to be worked out (EmailOutboxService plans them, outside this transaction). */
  @Column({ name: 'mail_pending', type: 'boolean', default: false })
  mailPending!: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
