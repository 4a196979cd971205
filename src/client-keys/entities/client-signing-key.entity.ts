import { Column, Entity, PrimaryColumn } from 'typeorm';

import type { KeyEnvironment, KeyState, PublicJwk, SigningAlg } from 'src/client-keys/client-keys.types';

/**
 * One of this service's own signing keys for private_key_jwt, in the key set of one environment
 * (sandbox or production: each has its own JWK Set URL). The private part is a JWK,
 * encrypted at rest (SecretCipherService, context `client_signing_key:<id>`), and wiped (NULL)
 * once the key is retired. The id is chosen before insert so the ciphertext can be bound to it.
 */
@Entity({ name: 'client_signing_key' })
export class ClientSigningKey {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'text', unique: true })
  kid!: string;

  /** The key set: signs for the organizations of this environment, published at its JWK Set URL only. */
  @Column({ type: 'text' })
  environment!: KeyEnvironment;

  @Column({ type: 'text' })
  alg!: SigningAlg;

  @Column({ type: 'text' })
  state!: KeyState;

  /** Public members only (allow-listed), with kid, alg and use. */
  @Column({ name: 'public_jwk', type: 'jsonb' })
  publicJwk!: PublicJwk;

  @Column({ name: 'private_key_enc', type: 'text', nullable: true })
  privateKeyEnc!: string | null;

  /** When it was generated, which is when it was first published. */
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'activated_at', type: 'timestamptz', nullable: true })
  activatedAt!: Date | null;

  @Column({ name: 'retiring_at', type: 'timestamptz', nullable: true })
  retiringAt!: Date | null;

  @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;
}
