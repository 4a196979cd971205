import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { Request } from 'express';

import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

export const IS_PUBLIC = 'auth:public';
export const HTML_ROUTES = 'auth:html';
export const ROLES = 'auth:roles';
export const ORG_SCOPE = 'auth:org-scope';
export const ALLOW_PASSWORD_CHANGE_PENDING = 'auth:allow-password-change-pending';

/** No sign-in needed (login page, health, SMART launch entry points). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

/** Browser pages: unauthenticated → redirect to /login, other errors → an error page, not JSON. */
export const HtmlRoutes = (): MethodDecorator & ClassDecorator => SetMetadata(HTML_ROUTES, true);

/** Only these roles may call the route. */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator => SetMetadata(ROLES, roles);

/** Where the organization id of an org-scoped route is read from. */
export interface OrgScopeSource {
  param?: string;
  query?: string;
  /** A field of the (form or JSON) body, for POSTs that name the organization there. */
  body?: string;
}

/**
 * The route acts on one organization: a root admin may act on any, everyone else only on their own.
 * Another organization's id answers 404, so ids cannot be probed.
 */
export const OrgScope = (source: OrgScopeSource = { param: 'orgId' }): MethodDecorator & ClassDecorator =>
  SetMetadata(ORG_SCOPE, source);

/** Reachable while a forced password change is pending (the change-password page, logout). */
export const AllowPasswordChangePending = (): MethodDecorator & ClassDecorator =>
  SetMetadata(ALLOW_PASSWORD_CHANGE_PENDING, true);

/** The signed-in user (set by passport from the server-side session). */
export const CurrentUser = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthUser => {
  return ctx.switchToHttp().getRequest<Request>().user as AuthUser;
});

/** A CSRF token for the form or page being rendered (double-submit, tied to the session). */
export const CsrfToken = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  return ctx.switchToHttp().getRequest<Request>().issueCsrfToken();
});
