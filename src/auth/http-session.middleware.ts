import { createHmac } from 'node:crypto';

import { ForbiddenException, Inject, Injectable, NestMiddleware, OnModuleDestroy } from '@nestjs/common';
import connectPgSimple from 'connect-pg-simple';
import cookieParser from 'cookie-parser';
import { doubleCsrf } from 'csrf-csrf';
import { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import passport from 'passport';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { crossSiteRefusal } from './origin-check';

export const SESSION_COOKIE = 'ec.sid';

/**
 * Paths whose POSTs come from other sites by design, exempt from the Origin check and the CSRF
 * token: the EHR launch, which an EHR may POST (its own checks apply: the iss allow-list, then
 * state and PKCE at the callback). Epic's OAuth callback is a GET, which neither check concerns.
 * And the one-click unsubscribe (RFC 8058 §3.1): a mailbox provider POSTs it from its own servers,
 * with no session and no CSRF token; the signed token in the URL is its authority (§4), it names
 * the one user and channel it affects, and all it can do is turn that email off
 * (src/mail/unsubscribe.controller.ts). The same for the link that confirms an entered contact
 * address (src/connection-health/contact-confirmation.controller.ts): opened from an email, maybe in
 * a browser without a session; its sealed token names the one user and address it can confirm.
 */
const CROSS_SITE_PATHS: string[] = ['/fhir/epic-launch', '/mail/unsubscribe', '/mail/confirm'];

/**
 * Server-side sessions in PostgreSQL (sharing TypeORM's pool, so the embedded database works too),
 * passport on top, then CSRF protection (double submit bound to the session id) for every
 * state-changing request. Registered for all routes by AuthModule, after Nest's body parsers.
 */
@Injectable()
export class HttpSessionMiddleware implements NestMiddleware, OnModuleDestroy {
  private readonly store: session.Store & { close?: () => void };
  private readonly chain: RequestHandler[];

  constructor(@Inject(APP_CONFIG) config: AppConfig, dataSource: DataSource) {
    const PgStore = connectPgSimple(session);
    this.store = new PgStore({
      pool: (dataSource.driver as PostgresDriver).master as Pool,
      tableName: 'user_session',
      createTableIfMissing: false,
      pruneSessionInterval: config.env.NODE_ENV === 'test' ? false : 15 * 60,
    });
    const secure = config.secureCookies;
    const sessionMiddleware = session({
      name: SESSION_COOKIE,
      store: this.store,
      secret: config.sessionSecrets,
      resave: false,
      saveUninitialized: false,
      rolling: true,
      proxy: config.env.TRUST_PROXY,
      cookie: { httpOnly: true, sameSite: 'lax', secure, maxAge: config.env.SESSION_TTL_MINUTES * 60_000 },
    });
    // A separate key for CSRF, derived so operators manage one secret (rotation: list several).
    const ownOrigin = new URL(config.publicBaseUrl).origin;
    const csrfSecrets = config.sessionSecrets.map((s) =>
      createHmac('sha256', s).update('csrf').digest('base64url'),
    );
    const { doubleCsrfProtection, generateCsrfToken } = doubleCsrf({
      getSecret: () => csrfSecrets,
      getSessionIdentifier: (req) => req.session.id,
      cookieName: secure ? '__Host-ec.csrf' : 'ec.csrf',
      cookieOptions: { sameSite: 'strict', secure, httpOnly: true, path: '/' },
      getCsrfTokenFromRequest: (req) => {
        const token = (req.body as Record<string, unknown> | undefined)?._csrf ?? req.headers['x-csrf-token'];
        return typeof token === 'string' ? token : undefined;
      },
      skipCsrfProtection: isCrossSitePath,
    });
    // Before the token: a cross-site form is refused as such, even with a token it could not read.
    const sameOrigin: RequestHandler = (req, _res, next) => {
      const refusal = isCrossSitePath(req) ? null : crossSiteRefusal(req, ownOrigin);
      next(refusal ? new ForbiddenException(refusal) : undefined);
    };
    const csrf: RequestHandler = (req, res, next) => {
      req.issueCsrfToken = () => {
        // An anonymous session is only stored once modified; the token is bound to its id.
        req.session.csrfIssued = true;
        return generateCsrfToken(req, res);
      };
      doubleCsrfProtection(req, res, (err?: unknown) => {
        if (err) {
          return next(new ForbiddenException('Invalid or missing CSRF token; reload the page and retry'));
        }
        // Verified: drop the field so DTO validation (forbidNonWhitelisted) does not see it.
        if (req.body && typeof req.body === 'object') delete (req.body as Record<string, unknown>)._csrf;
        next();
      });
    };
    this.chain = [
      cookieParser(),
      sessionMiddleware,
      passport.initialize() as RequestHandler,
      passport.session() as RequestHandler,
      sameOrigin,
      csrf,
    ];
  }

  use(req: Request, res: Response, next: NextFunction): void {
    const run = (i: number, err?: unknown): void => {
      if (err) return next(err);
      if (i === this.chain.length) return next();
      this.chain[i](req, res, (e?: unknown) => run(i + 1, e));
    };
    run(0);
  }

  onModuleDestroy(): void {
    this.store.close?.();
  }
}

/** originalUrl: inside Nest's middleware chain req.path is relative to the mount point. */
function isCrossSitePath(req: Request): boolean {
  return CROSS_SITE_PATHS.includes(req.originalUrl.split('?')[0] ?? '');
}
