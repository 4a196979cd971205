import type { AddressInfo } from 'node:net';

import type { Type } from '@nestjs/common';
import { Test, TestingModuleBuilder } from '@nestjs/testing';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import TestAgent from 'supertest/lib/agent';
import { DataSource } from 'typeorm';

import { AppModule } from 'src/app.module';
import { configureApp } from 'src/configure-app';

import { freshDatabaseUrl } from './database';

export interface TestApp {
  app: NestExpressApplication;
  dataSource: DataSource;
  /** A cookie-keeping client, like one browser. */
  agent(): TestAgent;
  /** One-off requests without cookies. */
  http(): TestAgent;
  close(): Promise<void>;
}

/**
 * Boots the real AppModule with the same configureApp() as main.ts, on a fresh database cloned
 * from the migrated template (or `databaseUrl`). `env` overrides the environment for this app;
 * `modules` are mounted beside AppModule (a test's own probe routes, under the app's global
 * guards, pipes and filters).
 */
export async function createTestApp(
  options: { env?: Record<string, string>; databaseUrl?: string; modules?: Type[] } = {},
): Promise<TestApp> {
  const databaseUrl = options.databaseUrl ?? (await freshDatabaseUrl());
  return bootTestApp({
    env: { DATABASE_URL: databaseUrl, MIGRATIONS_RUN: 'false', ...options.env },
    modules: options.modules,
  });
}

/**
 * The one way a test boots the app (createTestApp, createEmbeddedTestApp): AppModule.forRoot()
 * validated under `env` (set for the boot only), `modules` beside it, `override` applied to the
 * testing module (a provider a test must replace), then configureApp() and init() as main.ts does.
 * `onClose` runs after the app has closed (what the caller started for it).
 */
export async function bootTestApp(options: {
  env: Record<string, string>;
  modules?: Type[];
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
  onClose?: () => Promise<void>;
}): Promise<TestApp> {
  const saved = { ...process.env };
  Object.assign(process.env, options.env);
  try {
    const builder = Test.createTestingModule({
      imports: [AppModule.forRoot(), ...(options.modules ?? [])],
    });
    const moduleRef = await (options.override ? options.override(builder) : builder).compile();
    const app = moduleRef.createNestApplication<NestExpressApplication>({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    await configureApp(app);
    await app.init();
    const server = app.getHttpServer();
    return {
      app,
      dataSource: app.get(DataSource),
      agent: () => request.agent(server),
      http: () => request(server),
      close: async () => {
        try {
          await app.close();
        } finally {
          await options.onClose?.();
        }
      },
    };
  } finally {
    process.env = saved;
  }
}

/**
 * Makes the app listen on a free loopback port, for servers that call it back (the fake Epic
 * fetching the app's JWK Set). Returns the app's base URL.
 */
export async function listenOnLoopback(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
}
