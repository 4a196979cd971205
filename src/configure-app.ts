import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';

import { NestExpressApplication } from '@nestjs/platform-express';
import { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import hbs from 'hbs';

import { APP_CONFIG, AppConfig } from './config/app-config';
import { serveOpenApi } from './openapi/openapi';
import { PROJECT_ROOT } from './paths';
import { registerViewHelpers } from './views/view-helpers';

/**
 * Web settings shared by main.ts and the test app: security headers, views, static files.
 * Sessions, passport and CSRF are middleware of AuthModule, so they are part of every app.
 */
export async function configureApp(app: NestExpressApplication): Promise<void> {
  const config = app.get<AppConfig>(APP_CONFIG);
  app.set('trust proxy', config.env.TRUST_PROXY ? 1 : false);
  app.disable('x-powered-by');
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          'script-src': ["'self'"], // no inline scripts, ever
          'style-src': ["'self'"],
          'img-src': ["'self'", 'data:'],
          'form-action': ["'self'"],
          'frame-ancestors': ["'none'"],
          'upgrade-insecure-requests': config.secureCookies ? [] : null,
        },
      },
      strictTransportSecurity: config.secureCookies ? { maxAge: 31536000, includeSubDomains: true } : false,
      referrerPolicy: { policy: 'no-referrer' },
    }),
  );
  // Pages and JSON can carry CSRF tokens or one-time passwords: no browser or proxy may cache them.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!req.path.startsWith('/static/')) res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // Nest's own body parsers, registered here so that Nest adds no others. (The FHIR gateway's
  // requests never reach Express: src/gateway/gateway-entry.service.ts.)
  app.useBodyParser('json', { type: (req) => mediaType(req) === 'application/json' });
  app.useBodyParser('urlencoded', {
    extended: true,
    type: (req) => mediaType(req) === 'application/x-www-form-urlencoded',
  });
  // The OpenAPI document of the gateway and the JSON API, public in every environment (src/openapi).
  serveOpenApi(app, config.publicBaseUrl);
  app.useStaticAssets(join(PROJECT_ROOT, 'public'), { prefix: '/static/', maxAge: '1h', index: false });
  app.setBaseViewsDir(join(PROJECT_ROOT, 'views'));
  app.setViewEngine('hbs');
  app.set('view options', { layout: 'layouts/main' });
  registerViewHelpers(hbs);
  await new Promise<void>((resolve) =>
    hbs.registerPartials(join(PROJECT_ROOT, 'views', 'partials'), () => resolve()),
  );
}

const mediaType = (req: IncomingMessage): string =>
  (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
