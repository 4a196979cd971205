import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Request } from 'express';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { ApiKeyPrincipal } from 'src/api-keys/api-keys.types';
import { ErrorCode } from 'src/common/errors/domain-error';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { GatewayError } from './gateway.errors';

/** Who calls the gateway: a verified API key, and the organization of the URL, which is the key's. */
export interface GatewayCaller {
  principal: ApiKeyPrincipal;
  organization: { id: string; slug: string };
}

export type GatewayRequest = Request & { gatewayCaller?: GatewayCaller };

/** RFC 6750 §2.1: `Authorization: Bearer <token>`. */
const BEARER = /^Bearer +(\S+) *$/i;

/**
 * The gateway's authentication: the API key in `Authorization: Bearer`, verified by ApiKeys (401
 * when missing, malformed, unknown, revoked or expired), counted as used, and valid only for its own
 * organization's URL. A key of another organization and an organization that does not exist get
 * the same 403, so a key cannot probe which organizations exist.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly organizations: OrganizationsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<GatewayRequest>();
    const presented = BEARER.exec(req.headers.authorization ?? '')?.[1];
    if (!presented) {
      throw new GatewayError(ErrorCode.Unauthenticated, 'Send an API key: Authorization: Bearer <key>.');
    }
    const principal = await this.apiKeys.authenticate(presented);
    this.apiKeys.recordUse(principal);
    const slug = String(req.params.slug);
    const organization = await this.organizations.findBySlug(slug);
    if (!organization || organization.id !== principal.organizationId) {
      throw new GatewayError(
        ErrorCode.Forbidden,
        `This API key gives no access to the organization "${slug.slice(0, 100)}".`,
      );
    }
    req.gatewayCaller = { principal, organization: { id: organization.id, slug: organization.slug } };
    return true;
  }
}
