import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { Request, Response } from 'express';

import { HtmlRoutes, Public } from 'src/common/decorators/auth.decorators';

import { OwnConnectionNoticesService } from './own-connection-notices.service';

const tokenOf = (req: Request): unknown =>
  req.query.t ?? (req.body as Record<string, unknown> | undefined)?.t;

/**
 * Double opt-in for an address a provider or patient entered on their page: the link emailed to it
 * (`/mail/confirm?t=`, an opaque sealed token naming the user and the address's hash, valid 3 days).
 * No sign-in: the token is the authority, and all it can do is confirm that address for that user.
 *
 * - GET shows a page with a button and changes nothing (link scanners fetch URLs in messages).
 * - POST confirms. Exempt from the CSRF token and the Origin check like the unsubscribe link
 *   (src/auth/http-session.middleware.ts): the person may open it in a browser without a session.
 *
 * A forged, altered, expired or outdated link gets 400 and changes nothing.
 */
@Controller('mail/confirm')
@Public()
@HtmlRoutes()
export class ContactConfirmationController {
  constructor(private readonly ownConnections: OwnConnectionNoticesService) {}

  @Get()
  async ask(@Req() req: Request, @Res() res: Response): Promise<void> {
    const token = tokenOf(req);
    const state = await this.ownConnections.inspectConfirmation(token);
    const bad = state === null || state === 'expired' || state === 'stale';
    res.status(bad ? 400 : 200).render('mail/confirm', {
      title: 'Confirm your email address',
      invalid: state === null,
      expired: state === 'expired',
      stale: state === 'stale',
      confirm: state === 'valid',
      already: state === 'already',
      token,
    });
  }

  @Post()
  @HttpCode(200)
  async confirm(@Req() req: Request, @Res() res: Response): Promise<void> {
    const outcome = await this.ownConnections.confirmContact(tokenOf(req));
    const bad = outcome === null || outcome === 'expired' || outcome === 'stale';
    res.status(bad ? 400 : 200).render('mail/confirm', {
      title: 'Confirm your email address',
      invalid: outcome === null,
      expired: outcome === 'expired',
      stale: outcome === 'stale',
      done: outcome === 'confirmed',
      already: outcome === 'already',
    });
  }
}
