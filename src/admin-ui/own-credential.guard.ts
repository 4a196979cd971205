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

import { TokenStoreService } from 'src/connections/token-store.service';

const OWN_CREDENTIAL = 'ownCredentialParam';

/** A user's credential (metadata only), as TokenStoreService returns it. */
export type OwnedCredentialRecord = NonNullable<Awaited<ReturnType<TokenStoreService['findUserCredential']>>>;

/** Where the guard leaves the credential it checked, so the handler does not read it again. */
const CHECKED = Symbol('ownCredential');
type CheckedRequest = Request & { [CHECKED]?: OwnedCredentialRecord };

/** The credential @OwnCredential() checked for this request. */
export const CheckedCredential = createParamDecorator(
  (_data: unknown, context: ExecutionContext): OwnedCredentialRecord =>
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
