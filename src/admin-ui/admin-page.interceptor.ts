import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Request } from 'express';
import { from, Observable, switchMap } from 'rxjs';

import { FlashMessage, takeFlash } from 'src/common/flash';
import { NotificationsService } from 'src/connection-health/notifications.service';

/** What the layout of every admin page shows besides the page itself. */
export interface AdminLayoutData {
  /** One-time messages (sign-in notices, what an action did). */
  flashes: FlashMessage[];
  /** Unread notifications, in the header. */
  unreadCount: number;
}

/**
 * What every admin page's layout shows: one-time messages (e.g. the sign-in notices) and the
 * unread notification count in the header.
 */
@Injectable()
export class AdminLayout {
  constructor(private readonly notifications: NotificationsService) {}

  async decorate<T extends object>(req: Request, data: T): Promise<T & AdminLayoutData> {
    return {
      ...data,
      flashes: takeFlash(req.session),
      unreadCount: req.user ? await this.notifications.unreadCount(req.user) : 0,
    };
  }
}

/** Adds the layout data to the view model each @Render handler returns. */
@Injectable()
export class AdminPageInterceptor implements NestInterceptor {
  constructor(private readonly layout: AdminLayout) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    return next
      .handle()
      .pipe(
        switchMap((data: unknown) =>
          from(
            data && typeof data === 'object' && req.user
              ? this.layout.decorate(req, data)
              : Promise.resolve(data),
          ),
        ),
      );
  }
}
