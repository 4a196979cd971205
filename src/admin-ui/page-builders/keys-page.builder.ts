import { Inject, Injectable } from '@nestjs/common';
import { Request } from 'express';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { KeyEnvironment } from 'src/client-keys/client-keys.types';
import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { addFlash, saveSession } from 'src/common/flash';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { AuthUser } from 'src/users/user.view';

import { KeysPage, keysPage, rotationFlashes } from '../view-models/keys-page';
import type { Viewer } from '../view-models/page';

/** The root admin's Signing keys page, and its "Start rotation". */
export type KeysPageView = KeysPage & Viewer;

@Injectable()
export class KeysPageBuilder {
  constructor(
    private readonly keys: ClientKeysService,
    private readonly rotation: KeyRotationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async page(viewer: Viewer): Promise<KeysPageView> {
    const page = keysPage(
      await this.keys.list(),
      {
        jwksUrls: { sandbox: this.keys.jwksUrl('sandbox'), production: this.keys.jwksUrl('production') },
        overlapSeconds: this.config.env.KEY_ROTATION_OVERLAP_SECONDS,
        intervalDays: this.config.env.KEY_ROTATION_INTERVAL_DAYS,
      },
      new Date(),
    );
    return { ...page, ...viewer };
  }

  /**
   * Publishes a `next` key per algorithm in `environment`'s set only (none when one is waiting;
   * the schedule promotes them), and tells the next page what happened.
   */
  async startRotation(req: Request, user: AuthUser, environment: KeyEnvironment): Promise<void> {
    const startedAt = new Date();
    const next = await this.rotation.startRotation(user.id, environment, startedAt);
    addFlash(req.session, ...rotationFlashes(next, startedAt, environment));
    await saveSession(req.session); // before the redirect, which the browser follows at once
  }
}
