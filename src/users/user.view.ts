import { Role, User } from './user.entity';

/** What leaves the users module: never the password hash. */
export interface UserView {
  id: string;
  email: string;
  role: Role;
  organizationId: string | null;
  disabled: boolean;
  mustChangePassword: boolean;
  lastLoginAt: string | null;
  createdAt: string;
}

export function toUserView(user: User): UserView {
  return {
    id: user.id,
    email: user.email,
    role: user.role,
    organizationId: user.organizationId,
    disabled: user.disabled,
    mustChangePassword: user.mustChangePassword,
    lastLoginAt: user.lastLoginAt?.toISOString() ?? null,
    createdAt: user.createdAt.toISOString(),
  };
}

/** The signed-in user as guards and controllers see it (kept on the request, not in the session). */
export interface AuthUser {
  id: string;
  email: string;
  role: Role;
  organizationId: string | null;
  mustChangePassword: boolean;
}

export function toAuthUser(user: User): AuthUser {
  return {
    id: user.id,
    email: user.email,
    role: user.role,
    organizationId: user.organizationId,
    mustChangePassword: user.mustChangePassword,
  };
}
