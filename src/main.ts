import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';

import { AppModule } from './app.module';
import { APP_CONFIG, AppConfig } from './config/app-config';
import { configureApp } from './configure-app';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  await configureApp(app);
  app.enableShutdownHooks();
  const config = app.get<AppConfig>(APP_CONFIG);
  await app.listen(config.env.PORT, config.env.HOST);
  // Nest's Logger (routed to pino) takes (object, message) with this class's context.
  const logger = new NestLogger('Bootstrap');
  if (config.secretsSource === 'generated') {
    logger.warn(
      { dataDir: config.dataDir },
      'No ENCRYPTION_KEYS / SESSION_SECRET configured: generated development secrets under DATA_DIR. ' +
        'Configure both for production.',
    );
  }
  logger.log({ url: config.publicBaseUrl }, `epic-connect is listening: open ${config.publicBaseUrl}/login`);
}

bootstrap().catch((error: unknown) => {
  // The logger may not exist yet (bad configuration, database unreachable): plain stderr, no values.
  process.stderr.write(
    `epic-connect failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
