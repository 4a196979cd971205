import { Global, Module } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { parseCipherKeys, SecretCipherService } from './secret-cipher.service';

@Global()
@Module({
  providers: [
    {
      provide: SecretCipherService,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new SecretCipherService(parseCipherKeys(config.encryptionKeys)),
    },
  ],
  exports: [SecretCipherService],
})
export class CryptoModule {}
