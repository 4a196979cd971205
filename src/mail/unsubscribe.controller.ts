import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { Request, Response } from 'express';

import { HtmlRoutes, Public } from 'src/common/decorators/auth.decorators';

import { MailPreferencesService } from './mail-preferences.service';

const tokenOf = (req: Request): unknown =>
  req.query.t ?? (req.body as Record<string, unknown> | undefined)?.t;

/**
 * One-click unsubscribe (RFC 8058), no sign-in: the signed token in the link is the authority.
 *
 * - GET shows a confirmation page with a button and changes nothing: link scanners and previews
 *   fetch URLs in messages, and RFC 8058 §3 says a GET must not unsubscribe.
 * - POST unsubscribes. A mail client's one-click POST (body `List-Unsubscribe=One-Click`, RFC 8058
 *   §3.1) comes from the mailbox provider's servers, without cookies, session or CSRF token, so this
 *   route is exempt from the CSRF check and the Origin check (src/auth/http-session.middleware.ts).
 *   That is safe here because the token itself is unguessable and names the one user and channel it
 *   can affect (§4: the URI must identify the recipient and list without further context), and all it
 *   can do is turn email off.
 *
 * Each link works once: used again it says "already unsubscribed". A forged or altered token gets
 * 400 and changes nothing.
 */
@Controller('mail/unsubscribe')
@Public()
@HtmlRoutes()
export class UnsubscribeController {
  constructor(private readonly preferences: MailPreferencesService) {}

  @Get()
  async confirm(@Req() req: Request, @Res() res: Response): Promise<void> {
    const token = tokenOf(req);
    const state = await this.preferences.inspect(token);
    if (!state) return this.invalid(res);
    res.render('mail/unsubscribe', {
      title: 'Unsubscribe',
      confirm: state === 'valid',
      already: state === 'used',
      token,
      ...this.wording(token),
    });
  }

  @Post()
  @HttpCode(200)
  async unsubscribe(@Req() req: Request, @Res() res: Response): Promise<void> {
    const token = tokenOf(req);
    const outcome = await this.preferences.unsubscribe(token);
    if (!outcome) return this.invalid(res);
    res.render('mail/unsubscribe', {
      title: 'Unsubscribe',
      done: outcome === 'unsubscribed',
      already: outcome === 'used',
      ...this.wording(token),
    });
  }

  /** Which emails the link stops, and where the choice can be changed back. */
  private wording(token: unknown): { what: string; where: string } {
    return this.preferences.channelOf(token) === 'own-connection'
      ? { what: 'emails telling you that your own connection ended', where: 'your page' }
      : { what: 'connection emails', where: 'your account page' };
  }

  private invalid(res: Response): void {
    res.status(400).render('mail/unsubscribe', { title: 'Unsubscribe', invalid: true });
  }
}
