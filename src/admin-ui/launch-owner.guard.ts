import {
  CanActivate,
  ExecutionContext,
  Injectable,
  NotFoundException,
  SetMetadata,
  UseGuards,
  applyDecorators,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Request } from 'express';
import { isUUID } from 'class-validator';

import { TokenStoreService } from 'src/epic-auth/token-store.service';

const OWN_CREDENTIAL = 'ownCredentialParam';

/**
 * The route's `:param` must be a credential of the signed-in user (their own launch or connected
 * account); anyone else's, or an unknown id, is a 404 so ids cannot be probed. Use with @Roles.
 */
export const OwnCredential = (param = 'credentialId'): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(OWN_CREDENTIAL, param), UseGuards(OwnCredentialGuard));

@Injectable()
export class OwnCredentialGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenStoreService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const param = this.reflector.getAllAndOverride<string | undefined>(OWN_CREDENTIAL, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!param) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const id = req.params[param];
    if (!req.user || typeof id !== 'string' || !isUUID(id)) throw new NotFoundException('Not found');
    if (!(await this.tokens.findUserCredential(req.user.id, id))) throw new NotFoundException('Not found');
    return true;
  }
}
