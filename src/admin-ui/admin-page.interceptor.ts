import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Request } from 'express';
import { from, Observable, switchMap } from 'rxjs';

import { takeFlash } from 'src/common/flash';
import { NotificationsService } from 'src/connection-health/notifications.service';

/**
 * What every admin page's layout shows: one-time messages (e.g. the sign-in notices) and the
 * unread notification count in the header. Added to the view model each handler renders.
 */
@Injectable()
export class AdminPageInterceptor implements NestInterceptor {
  constructor(private readonly notifications: NotificationsService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    return next.handle().pipe(
      switchMap((data: unknown) =>
        from(
          (async () => {
            if (!data || typeof data !== 'object' || !req.user) return data;
            return {
              ...data,
              flashes: takeFlash(req.session),
              unreadCount: await this.notifications.unreadCount(req.user),
            };
          })(),
        ),
      ),
    );
  }
}
