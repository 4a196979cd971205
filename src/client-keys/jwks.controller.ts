import { Controller, Get, Res } from '@nestjs/common';
import { Response } from 'express';

import { Public } from 'src/common/decorators/auth.decorators';

import type { PublicJwks } from './client-keys.types';
import { ClientKeysService } from './client-keys.service';

/**
 * The JWK Set URL registered at Epic: public, no sign-in, no cookies. Cacheable for less than
 * half the rotation overlap (the app otherwise sends `no-store`), so Epic's cache (up to 29 h
 * unless told otherwise) sees a new key before it signs. Served from memory (ClientKeysService):
 * Epic may fetch it during one of our own token calls, so it never waits for a database connection.
 * @see EPIC-SMART.md §3 (JWKS hosting)
 */
@Controller('.well-known')
@Public()
export class JwksController {
  constructor(private readonly keys: ClientKeysService) {}

  @Get('jwks.json')
  async publish(@Res({ passthrough: true }) res: Response): Promise<PublicJwks> {
    const jwks = await this.keys.publicJwks();
    res.setHeader('Cache-Control', this.keys.jwksCacheControl());
    return jwks;
  }
}
