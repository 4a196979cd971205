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
 * How long an instance remembers which organization a slug names: one lookup less per request.
 * A renamed or deleted organization is seen within this time (its requests then find no
 * connection, or the key's organization no longer matches: 503 or 403).
 */
const SLUG_CACHE_MS = 5_000;
const SLUG_CACHE_SIZE = 10_000;

/**
 * The gateway's authentication: the API key in `Authorization: Bearer`, verified by ApiKeys (401
 * when missing, malformed, unknown, revoked or expired), counted as used, and valid only for its own
 * organization's URL. A key of another organization and an organization that does not exist get
 * the same 403, so a key cannot probe which organizations exist.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly slugs = new Map<string, { id: string; slug: string; until: number }>();

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
    const organization = await this.organizationOf(slug);
    if (!organization || organization.id !== principal.organizationId) {
      throw new GatewayError(
        ErrorCode.Forbidden,
        `This API key gives no access to the organization "${slug.slice(0, 100)}".`,
      );
    }
    req.gatewayCaller = { principal, organization: { id: organization.id, slug: organization.slug } };
    return true;
  }

  /** The organization a slug names, remembered for SLUG_CACHE_MS (unknown slugs are not remembered). */
  private async organizationOf(slug: string): Promise<{ id: string; slug: string } | null> {
    const now = Date.now();
    const known = this.slugs.get(slug);
    if (known && known.until > now) return known;
    const found = await this.organizations.findBySlug(slug);
    if (!found) return null;
    if (this.slugs.size >= SLUG_CACHE_SIZE) this.slugs.delete(this.slugs.keys().next().value!);
    const entry = { id: found.id, slug: found.slug, until: now + SLUG_CACHE_MS };
    this.slugs.set(slug, entry);
    return entry;
  }
}
