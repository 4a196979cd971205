import { HttpException, HttpStatus } from '@nestjs/common';

/** Wrong credentials, locked or disabled account: the login page shows the message again. */
export class LoginFailedException extends HttpException {
  constructor(message: string) {
    super(message, HttpStatus.UNAUTHORIZED);
  }
}
