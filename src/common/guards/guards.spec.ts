import {
  ExecutionContext,
  ForbiddenException,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';

import {
  AllowPasswordChangePending,
  HtmlRoutes,
  OrgScope,
  Public,
  Roles,
} from 'src/common/decorators/auth.decorators';
import { LoginRequiredException, PasswordChangeRequiredException } from 'src/common/errors';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AuthenticatedGuard } from './authenticated.guard';
import { OrgScopeGuard } from './org-scope.guard';
import { RolesGuard } from './roles.guard';

const ORG_A = '00000000-0000-4000-8000-00000000000a';
const ORG_B = '00000000-0000-4000-8000-00000000000b';

class Api {
  open(): void {}
  plain(): void {}
  @Roles(Role.RootAdmin) rootOnly(): void {}
  @Roles(Role.RootAdmin, Role.OrgAdmin) @OrgScope() orgByParam(): void {}
  @OrgScope({ query: 'org' }) orgByQuery(): void {}
  @OrgScope({ body: 'org' }) orgByBody(): void {}
  @AllowPasswordChangePending() changePassword(): void {}
}
Public()(Api.prototype, 'open', Object.getOwnPropertyDescriptor(Api.prototype, 'open')!);

@HtmlRoutes()
class Pages {
  page(): void {}
}

function user(role: Role, organizationId: string | null, mustChangePassword = false): AuthUser {
  return { id: 'u1', email: 'u@example.org', role, organizationId, mustChangePassword };
}

function context(
  cls: new () => object,
  method: string,
  req: { user?: AuthUser; params?: Record<string, string>; query?: Record<string, string>; body?: object },
): { ctx: ExecutionContext; request: Record<string, unknown> } {
  const request = { method: 'GET', originalUrl: '/x', params: {}, query: {}, ...req };
  const ctx = {
    getHandler: () => (cls.prototype as Record<string, unknown>)[method],
    getClass: () => cls,
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
  return { ctx, request };
}

describe('AuthenticatedGuard', () => {
  const sut = new AuthenticatedGuard(new Reflector());

  it('lets anyone reach a @Public route', () => {
    expect(sut.canActivate(context(Api, 'open', {}).ctx)).toBe(true);
  });

  it('answers 401 to an anonymous JSON caller', () => {
    expect(() => sut.canActivate(context(Api, 'plain', {}).ctx)).toThrow(UnauthorizedException);
  });

  it('sends an anonymous browser to the login page and marks the request as HTML', () => {
    const { ctx, request } = context(Pages, 'page', {});
    expect(() => sut.canActivate(ctx)).toThrow(LoginRequiredException);
    expect(request.htmlErrors).toBe(true);
  });

  it('blocks everything but the password change while one is pending', () => {
    const u = user(Role.OrgAdmin, ORG_A, true);
    expect(() => sut.canActivate(context(Api, 'plain', { user: u }).ctx)).toThrow(
      PasswordChangeRequiredException,
    );
    expect(sut.canActivate(context(Api, 'changePassword', { user: u }).ctx)).toBe(true);
  });
});

describe('RolesGuard', () => {
  const sut = new RolesGuard(new Reflector());

  it('admits listed roles and refuses the others with 403', () => {
    expect(sut.canActivate(context(Api, 'rootOnly', { user: user(Role.RootAdmin, null) }).ctx)).toBe(true);
    for (const role of [Role.OrgAdmin, Role.Provider, Role.Patient]) {
      expect(() => sut.canActivate(context(Api, 'rootOnly', { user: user(role, ORG_A) }).ctx)).toThrow(
        ForbiddenException,
      );
    }
  });

  it('does not restrict routes without @Roles', () => {
    expect(sut.canActivate(context(Api, 'plain', { user: user(Role.Patient, ORG_A) }).ctx)).toBe(true);
  });
});

describe('OrgScopeGuard', () => {
  const sut = new OrgScopeGuard(new Reflector());

  it('lets a root admin act on any organization', () => {
    expect(
      sut.canActivate(
        context(Api, 'orgByParam', { user: user(Role.RootAdmin, null), params: { orgId: ORG_B } }).ctx,
      ),
    ).toBe(true);
  });

  it('lets an org admin act on their own organization only, answering 404 for another', () => {
    const admin = user(Role.OrgAdmin, ORG_A);
    expect(sut.canActivate(context(Api, 'orgByParam', { user: admin, params: { orgId: ORG_A } }).ctx)).toBe(
      true,
    );
    expect(() =>
      sut.canActivate(context(Api, 'orgByParam', { user: admin, params: { orgId: ORG_B } }).ctx),
    ).toThrow(NotFoundException);
  });

  it('reads the organization from the query when told to', () => {
    const admin = user(Role.OrgAdmin, ORG_A);
    expect(sut.canActivate(context(Api, 'orgByQuery', { user: admin, query: { org: ORG_A } }).ctx)).toBe(
      true,
    );
    expect(() => sut.canActivate(context(Api, 'orgByQuery', { user: admin, query: {} }).ctx)).toThrow(
      NotFoundException,
    );
  });

  it('reads the organization from the body when told to', () => {
    const admin = user(Role.OrgAdmin, ORG_A);
    expect(sut.canActivate(context(Api, 'orgByBody', { user: admin, body: { org: ORG_A } }).ctx)).toBe(true);
    expect(() =>
      sut.canActivate(context(Api, 'orgByBody', { user: admin, body: { org: ORG_B } }).ctx),
    ).toThrow(NotFoundException);
  });

  it('ignores routes without @OrgScope', () => {
    expect(sut.canActivate(context(Api, 'plain', { user: user(Role.Patient, ORG_A) }).ctx)).toBe(true);
  });
});
