import { Controller, Get, Res } from '@nestjs/common';
import { Response } from 'express';

import { Public } from 'src/common/decorators/auth.decorators';

import type { KeyEnvironment, PublicJwks } from './client-keys.types';
import { ClientKeysService, JWKS_PATHS } from './client-keys.service';

const WELL_KNOWN = '/.well-known/';
/** The route of an environment's JWK Set under `.well-known` (JWKS_PATHS without the prefix). */
const routeOf = (environment: KeyEnvironment): string => JWKS_PATHS[environment].slice(WELL_KNOWN.length);

/**
 * The JWK Set URLs registered at Epic, one per environment (Epic asks for separate non-production
 * and production ones: https://fhir.epic.com/Documentation?docId=oauth2): each publishes only the
 * keys of its own set. `/.well-known/jwks.json` is production's (the URL of the single set there
 * was before), `/.well-known/jwks-sandbox.json` sandbox's. Public, no sign-in, no cookies.
 * Cacheable for less than half the rotation overlap (the app otherwise sends `no-store`), so
 * Epic's cache (up to 29 h unless told otherwise) sees a new key before it signs. Served from
 * memory (ClientKeysService): Epic may fetch it during one of our own token calls, so it never
 * waits for a database connection.
 * @see src/client-keys/README.md
 */
@Controller('.well-known')
@Public()
export class JwksController {
  constructor(private readonly keys: ClientKeysService) {}

  @Get(routeOf('production'))
  production(@Res({ passthrough: true }) res: Response): Promise<PublicJwks> {
    return this.publish('production', res);
  }

  @Get(routeOf('sandbox'))
  sandbox(@Res({ passthrough: true }) res: Response): Promise<PublicJwks> {
    return this.publish('sandbox', res);
  }

  private async publish(environment: KeyEnvironment, res: Response): Promise<PublicJwks> {
    const jwks = await this.keys.publicJwks(environment);
    res.setHeader('Cache-Control', this.keys.jwksCacheControl());
    return jwks;
  }
}
