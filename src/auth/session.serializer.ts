import { Injectable } from '@nestjs/common';
import { PassportSerializer } from '@nestjs/passport';

import { UsersService } from 'src/users/users.service';
import { AuthUser } from 'src/users/user.view';

/** The session holds only the user id; the user is re-read each request, so disabling takes effect at once. */
@Injectable()
export class SessionSerializer extends PassportSerializer {
  constructor(private readonly users: UsersService) {
    super();
  }

  serializeUser(user: AuthUser, done: (err: unknown, id?: string) => void): void {
    done(null, user.id);
  }

  deserializeUser(id: string, done: (err: unknown, user?: AuthUser | false) => void): void {
    this.users.findAuthUser(id).then(
      (user) => done(null, user ?? false),
      (err: unknown) => done(err),
    );
  }
}
