import { CanActivate, ExecutionContext, Injectable, NotFoundException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Request } from 'express';

import { ORG_SCOPE, OrgScopeSource } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';

/**
 * Global guard for @OrgScope routes: root admins act on any organization, everyone else only on
 * their own. Another organization's id (or none) answers 404 rather than 403 so ids cannot be probed.
 */
@Injectable()
export class OrgScopeGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const source = this.reflector.getAllAndOverride<OrgScopeSource | undefined>(ORG_SCOPE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!source) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const user = req.user;
    if (!user) throw new NotFoundException('Organization not found');
    if (user.role === Role.RootAdmin) return true;
    const raw = source.param
      ? req.params[source.param]
      : source.query
        ? (req.query as Record<string, unknown>)[source.query]
        : (req.body as Record<string, unknown> | undefined)?.[source.body ?? ''];
    if (typeof raw === 'string' && user.organizationId !== null && raw === user.organizationId) return true;
    throw new NotFoundException('Organization not found');
  }
}
