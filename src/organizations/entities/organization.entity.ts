import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

import {
  AssertionAlg,
  BasicCredentialEncoding,
  ConnectionMode,
  EpicEnvironment,
  ScopeSyntax,
  TokenAuthMethod,
} from '../organization.types';

export { EpicEnvironment };

/** A healthcare organization and its Epic client registration (its connection is the Connections module's). */
@Entity({ name: 'organization' })
export class Organization {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 100, unique: true })
  slug!: string;

  @Column({ name: 'epic_environment', type: 'varchar', length: 20, default: EpicEnvironment.Sandbox })
  epicEnvironment!: EpicEnvironment;

  @Column({ name: 'fhir_base_url', type: 'varchar', length: 2048, nullable: true })
  fhirBaseUrl!: string | null;

  /** What an administrator calls the FHIR server ("Cerner Millennium"); null: decided from the base URL. */
  @Column({ name: 'fhir_server_name', type: 'varchar', length: 100, nullable: true })
  fhirServerName!: string | null;

  @Column({ name: 'epic_client_id', type: 'varchar', length: 200, nullable: true })
  epicClientId!: string | null;

  /** AES-GCM ciphertext (SecretCipherService); the plaintext never leaves OrganizationsService. */
  @Column({ name: 'client_secret_enc', type: 'text', nullable: true })
  clientSecretEnc!: string | null;

  /**
   * The origin of the token endpoint the secret is sent to, fixed at its first use after it was
   * typed: a token endpoint on another origin never receives it (organizations.service.ts).
   */
  @Column({ name: 'client_secret_token_origin', type: 'varchar', length: 300, nullable: true })
  clientSecretTokenOrigin!: string | null;

  /** Space-separated scopes to request, on top of those the flow itself needs (openid, fhirUser…). */
  @Column({ name: 'epic_scopes', type: 'varchar', length: 2000, nullable: true })
  epicScopes!: string | null;

  @Column({
    name: 'epic_token_auth_method',
    type: 'varchar',
    length: 30,
    default: TokenAuthMethod.ClientSecretBasic,
  })
  epicTokenAuthMethod!: TokenAuthMethod;

  @Column({ name: 'epic_scope_syntax', type: 'varchar', length: 2, default: ScopeSyntax.V1 })
  epicScopeSyntax!: ScopeSyntax;

  @Column({ name: 'epic_assertion_alg', type: 'varchar', length: 10, default: AssertionAlg.RS384 })
  epicAssertionAlg!: AssertionAlg;

  @Column({ name: 'epic_connection_mode', type: 'varchar', length: 20, default: ConnectionMode.Interactive })
  epicConnectionMode!: ConnectionMode;

  /** client_secret_basic credential encoding: the admin's choice (`auto` detects it). */
  @Column({
    name: 'epic_basic_encoding',
    type: 'varchar',
    length: 20,
    default: BasicCredentialEncoding.Auto,
  })
  epicBasicEncoding!: BasicCredentialEncoding;

  /** With `auto`: the encoding the token endpoint accepted, once seen (reset when the client changes). */
  @Column({ name: 'epic_basic_encoding_detected', type: 'varchar', length: 20, nullable: true })
  epicBasicEncodingDetected!: 'form-urlencoded' | 'raw' | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
