import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';

import { APP_CONFIG, buildAppConfig } from './app-config';
import { EnvSchema } from './env.schema';
import { ENV_KEYS, validateEnv } from './validate-env';

/**
 * Validates the environment once at boot (a bad value stops start-up naming the keys) and
 * provides the typed AppConfig everywhere. `forRoot()` reads the environment when called, so
 * each app (and each test app) gets the environment of its own creation.
 */
@Module({})
export class AppConfigModule {
  static forRoot(): DynamicModule {
    return {
      module: AppConfigModule,
      global: true,
      imports: [
        ConfigModule.forRoot({
          cache: true,
          validate: validateEnv,
          // Tests set their environment explicitly; a developer's .env must not leak into them.
          ignoreEnvFile: process.env.NODE_ENV === 'test',
        }),
      ],
      providers: [
        {
          provide: APP_CONFIG,
          inject: [ConfigService],
          useFactory: (config: ConfigService) => {
            const env = Object.assign(
              new EnvSchema(),
              Object.fromEntries([...ENV_KEYS].map((key) => [key, config.get(key)])),
            ) as EnvSchema;
            return buildAppConfig(env);
          },
        },
      ],
      exports: [APP_CONFIG],
    };
  }
}
