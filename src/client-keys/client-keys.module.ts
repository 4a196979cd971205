import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { UsersModule } from 'src/users/users.module';

import { ClientKeysService } from './client-keys.service';
import { ClientSigningKey } from './entities/client-signing-key.entity';
import { JwksController } from './jwks.controller';
import { KeyRotationService } from './key-rotation.service';
import { SigningKeyStore } from './signing-key.store';

/**
 * The service's own signing keys for private_key_jwt, one set per environment: generated here,
 * encrypted at rest, published at `/.well-known/jwks-sandbox.json` (sandbox) and
 * `/.well-known/jwks.json` (production), rotated on a schedule. EpicAuth signs client assertions
 * with `ClientKeysService.signingKey(alg, environment)`; the console rotates with `KeyRotationService`.
 */
@Module({
  imports: [TypeOrmModule.forFeature([ClientSigningKey]), UsersModule],
  controllers: [JwksController],
  providers: [SigningKeyStore, ClientKeysService, KeyRotationService],
  exports: [ClientKeysService, KeyRotationService],
})
export class ClientKeysModule {}
