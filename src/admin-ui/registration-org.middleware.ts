import { Injectable, NestMiddleware } from '@nestjs/common';
import { NextFunction, Request, Response } from 'express';

import { Role } from 'src/users/user.types';

/**
 * `/admin/epic/registration` without `?org=`: a root admin goes back to the console to choose an
 * organization, an org admin to their own organization's page. Only completes the address: who
 * may open which organization is still decided by the guards (@Roles, @OrgScope) and the
 * ValidationPipe, which also see every other request (signed out, another role, a pending password
 * change, an `org` given).
 *
 * It runs before the guards, which is why it is a middleware: @OrgScope would answer a missing
 * `org` with a 404. It reads the user that AuthModule's session middleware set (registered first:
 * AuthModule is imported before AdminUiModule, at the same depth).
 */
@Injectable()
export class RegistrationOrgRedirectMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction): void {
    const org = (req.query as Record<string, unknown>).org;
    const user = req.user;
    if ((org === undefined || org === '') && user && !user.mustChangePassword) {
      if (user.role === Role.OrgAdmin && user.organizationId) {
        return res.redirect(303, `/admin/epic/registration?org=${user.organizationId}`);
      }
      if (user.role === Role.RootAdmin || user.role === Role.OrgAdmin) return res.redirect(303, '/admin');
    }
    next();
  }
}
