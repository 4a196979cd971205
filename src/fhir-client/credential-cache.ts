import { Inject, Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvent, OnAnyConnectionEvent } from 'src/connections/connections.events';
import { ActiveCredential, CredentialTarget, TokenStoreService } from 'src/connections/token-store.service';
import { EpicClientChangedEvent, OrganizationEvents } from 'src/organizations/organizations.events';

const keyOf = (target: CredentialTarget): string =>
  'organizationId' in target ? `org:${target.organizationId}` : `cred:${target.credentialId}`;

/**
 * The credential lookups of FHIR calls, shared for CREDENTIAL_CACHE_MS: concurrent calls for one
 * connection make one query, and a busy connection makes about one per interval instead of one per
 * call. Every change this process makes (refresh, failure, connect, disconnect, registration
 * change) drops the entries of that organization at once; a change made by another instance is
 * seen within the interval, and a 401 always reads afresh.
 */
@Injectable()
export class CredentialCache {
  private readonly entries = new Map<
    string,
    { until: number; organizationId: string | null; value: ActiveCredential | null }
  >();
  private readonly loading = new Map<string, Promise<ActiveCredential | null>>();
  /** Bumped by every forget(): lookups that started before it are not cached. */
  private generation = 0;

  constructor(
    private readonly tokens: TokenStoreService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The credential for `target`, from the cache unless `fresh` or expired. */
  async get(target: CredentialTarget, fresh = false): Promise<ActiveCredential | null> {
    const key = keyOf(target);
    const ttl = this.config.env.CREDENTIAL_CACHE_MS;
    if (!fresh && ttl > 0) {
      const hit = this.entries.get(key);
      if (hit && hit.until > Date.now()) return hit.value;
      const pending = this.loading.get(key);
      if (pending) return pending;
    }
    const generation = this.generation;
    const load = this.tokens.findActive(target).then((value) => {
      // A change forgotten while this lookup ran may not be in its answer: do not keep it.
      if (ttl > 0 && generation === this.generation) {
        const organizationId =
          value?.organizationId ?? ('organizationId' in target ? target.organizationId : null);
        this.entries.set(key, { until: Date.now() + ttl, organizationId, value });
      }
      return value;
    });
    if (!fresh && ttl > 0) {
      this.loading.set(key, load);
      void load.finally(() => this.loading.delete(key)).catch(() => undefined);
    }
    return load;
  }

  /** Drops every cached lookup of an organization's connections. */
  forget(organizationId: string): void {
    this.generation += 1;
    for (const [key, entry] of this.entries) {
      if (entry.organizationId === organizationId) this.entries.delete(key);
    }
  }

  @OnAnyConnectionEvent()
  onConnectionChanged(event: ConnectionEvent): void {
    this.forget(event.organizationId);
  }

  @OnEvent(OrganizationEvents.EpicClientChanged)
  onRegistrationChanged(event: EpicClientChangedEvent): void {
    this.forget(event.organizationId);
  }
}
