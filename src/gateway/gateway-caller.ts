import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { ApiKeyPrincipal } from 'src/api-keys/api-keys.types';
import { ErrorCode } from 'src/common/errors/domain-error';
import { OrganizationDeletedEvent, OrganizationEvents } from 'src/organizations/organizations.events';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { GatewayError } from './gateway.errors';

/** Who calls the gateway: a verified API key, and the organization of the URL, which is the key's. */
export interface GatewayCaller {
  principal: ApiKeyPrincipal;
  organization: { id: string; slug: string };
}

/** RFC 6750 §2.1: `Authorization: Bearer <token>`. */
const BEARER = /^Bearer +(\S+) *$/i;

/**
 * How long an instance remembers which organization a slug names: one lookup less per request.
 * A renamed organization, or one deleted on another instance, is seen within this time (its
 * requests then find no connection, or the key's organization no longer matches: 503 or 403); one
 * deleted on this instance is forgotten at once (`organizations.deleted`), so its slug, taken by
 * another organization, names that one at once.
 */
const SLUG_CACHE_MS = 5_000;
const SLUG_CACHE_SIZE = 10_000;

/** Which organization a slug names, remembered for SLUG_CACHE_MS (unknown slugs are not remembered). */
@Injectable()
export class OrganizationSlugCache {
  private readonly slugs = new Map<string, { id: string; slug: string; until: number }>();

  constructor(private readonly organizations: OrganizationsService) {}

  async organizationOf(slug: string): Promise<{ id: string; slug: string } | null> {
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

  /** An organization deleted on this instance: its slug is looked up afresh at once. */
  @OnEvent(OrganizationEvents.Deleted)
  onOrganizationDeleted(event: OrganizationDeletedEvent): void {
    for (const [slug, entry] of this.slugs) if (entry.id === event.organizationId) this.slugs.delete(slug);
  }
}

/**
 * The gateway's authentication: the API key in `Authorization: Bearer`, verified by ApiKeys (401
 * when missing, malformed, unknown, revoked or expired; 429 for a client that sent too many guessed
 * keys, API_KEY_FAILURE_LIMIT), counted as used, and valid only for its own organization's URL. A
 * key of another organization and an organization that does not exist get the same 403, so a key
 * cannot probe which organizations exist.
 */
@Injectable()
export class GatewayAuthenticator {
  constructor(
    private readonly apiKeys: ApiKeysService,
    private readonly slugs: OrganizationSlugCache,
  ) {}

  /**
   * The caller of a request to `/gateway/<slug>/fhir`: `authorization` is its header, `clientIp`
   * its client's address (behind a proxy, with TRUST_PROXY), by which guessed keys are counted:
   * past API_KEY_FAILURE_LIMIT that client gets 429 with Retry-After for any key not held in memory.
   */
  async callerOf(
    authorization: string | undefined,
    clientIp: string | undefined,
    slug: string,
  ): Promise<GatewayCaller> {
    const presented = BEARER.exec(authorization ?? '')?.[1];
    if (!presented) {
      throw new GatewayError(ErrorCode.Unauthenticated, 'Send an API key: Authorization: Bearer <key>.');
    }
    const principal = await this.apiKeys.authenticate(presented, clientIp);
    this.apiKeys.recordUse(principal);
    const organization = await this.slugs.organizationOf(slug);
    if (!organization || organization.id !== principal.organizationId) {
      throw new GatewayError(
        ErrorCode.Forbidden,
        `This API key gives no access to the organization "${slug.slice(0, 100)}".`,
      );
    }
    return { principal, organization: { id: organization.id, slug: organization.slug } };
  }
}
