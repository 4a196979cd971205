import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Inject,
  Post,
  Render,
  Req,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import { Request, Response } from 'express';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { KEY_ENVIRONMENTS } from 'src/client-keys/client-keys.types';
import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { addFlash, saveSession } from 'src/common/flash';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { keysPage, rotationFlashes } from './view-models/keys-page';

/**
 * The root admin's Signing keys page: one section per key set (sandbox, production), each with
 * the JWK Set URL to register at Epic, the service's own private_key_jwt keys of that set with
 * their states and next automatic steps, and its own "Start rotation".
 * @see src/client-keys/README.md
 */
@Controller('admin/keys')
@HtmlRoutes()
@Roles(Role.RootAdmin)
@UseInterceptors(AdminPageInterceptor)
export class KeysPageController {
  constructor(
    private readonly keys: ClientKeysService,
    private readonly rotation: KeyRotationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @Render('admin/keys')
  async page(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<object> {
    const page = keysPage(
      await this.keys.list(),
      {
        jwksUrls: { sandbox: this.keys.jwksUrl('sandbox'), production: this.keys.jwksUrl('production') },
        overlapSeconds: this.config.env.KEY_ROTATION_OVERLAP_SECONDS,
        intervalDays: this.config.env.KEY_ROTATION_INTERVAL_DAYS,
      },
      new Date(),
    );
    return { ...page, user, csrfToken };
  }

  /**
   * Publishes a `next` key per algorithm in the posted `environment`'s set only (none when one is
   * waiting); the schedule promotes them. The other set is not touched.
   */
  @Post('rotate')
  async rotate(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @Body('environment') posted: unknown,
    @Res() res: Response,
  ): Promise<void> {
    const environment = KEY_ENVIRONMENTS.find((e) => e === posted);
    if (!environment) {
      throw new BadRequestException({ message: ['environment must be sandbox or production'] });
    }
    const startedAt = new Date();
    const next = await this.rotation.startRotation(user.id, environment, startedAt);
    addFlash(req.session, ...rotationFlashes(next, startedAt, environment));
    await saveSession(req.session); // before the redirect, which the browser follows at once
    res.redirect(303, '/admin/keys');
  }
}
