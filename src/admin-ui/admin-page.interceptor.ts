import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Request } from 'express';
import { from, Observable, switchMap } from 'rxjs';

import { takeFlash } from 'src/common/flash';
import { NotificationsService } from 'src/connection-health/notifications.service';

/**
 * What every admin page's layout shows: one-time messages (e.g. the sign-in notices) and the
 * unread notification count in the header.
 */
@Injectable()
export class AdminLayout {
  constructor(private readonly notifications: NotificationsService) {}

  async decorate<T extends object>(
    req: Request,
    data: T,
  ): Promise<T & { flashes: unknown[]; unreadCount: number }> {
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
