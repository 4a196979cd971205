import {
  CanActivate,
  createParamDecorator,
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

import type { StoredCredential } from 'src/connections/connections.types';
import { TokenStoreService } from 'src/connections/token-store.service';

const OWN_CREDENTIAL = 'ownCredentialParam';

/** Where the guard leaves the credential it checked, so the handler does not read it again. */
const CHECKED = Symbol('ownCredential');
type CheckedRequest = Request & { [CHECKED]?: StoredCredential };

/** The credential @OwnCredential() checked for this request. */
export const CheckedCredential = createParamDecorator(
  (_data: unknown, context: ExecutionContext): StoredCredential =>
    context.switchToHttp().getRequest<CheckedRequest>()[CHECKED]!,
);

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
    const req = context.switchToHttp().getRequest<CheckedRequest>();
    const id = req.params[param];
    if (!req.user || typeof id !== 'string' || !isUUID(id)) throw new NotFoundException('Not found');
    const credential = await this.tokens.findUserCredential(req.user.id, id);
    if (!credential) throw new NotFoundException('Not found');
    req[CHECKED] = credential;
    return true;
  }
}
