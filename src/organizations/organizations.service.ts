import { ConflictException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, In, IsNull, Repository } from 'typeorm';

import { isUniqueViolation } from 'src/database/pg-errors';
import { AuditActor, AuditService } from 'src/audit/audit.service';
import { DomainError, ErrorCode, FieldErrors } from 'src/common/errors/domain-error';
import { validationFailed } from 'src/common/errors/field-errors';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionsService } from 'src/connections/connections.service';
import { fhirBaseKey } from 'src/connections/connections.types';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';
import { UserView } from 'src/users/user.view';

import {
  CreateOrgAdminDto,
  CreateOrganizationDto,
  RegisterEpicClientDto,
  UpdateOrganizationDto,
} from './dto/organization.dto';
import {
  OrganizationJson,
  OrganizationView,
  toOrganizationJson,
  toOrganizationView,
} from './dto/organization.view';
import { Organization } from './entities/organization.entity';
import {
  BasicCredentialEncoding,
  defaultScopes,
  EPIC_SANDBOX_FHIR_BASE,
  EpicEnvironment,
  EpicRegistration,
  TokenAuthMethod,
} from './organization.types';
import { checkClientAuthentication } from './client-authentication';
import { checkFhirBaseUrl, slugify } from './fhir-base-url';
import { serverLabel } from './server-label';
import { EpicClientChangedEvent, OrganizationDeletedEvent, OrganizationEvents } from './organizations.events';

/** Organizations, their Epic client registration (secret encrypted, write-only) and their admins. */
@Injectable()
export class OrganizationsService {
  constructor(
    @InjectRepository(Organization) private readonly organizations: Repository<Organization>,
    private readonly dataSource: DataSource,
    private readonly cipher: SecretCipherService,
    private readonly audit: AuditService,
    private readonly users: UsersService,
    private readonly events: EventEmitter2,
    private readonly connections: ConnectionsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async list(
    options: { search?: string; limit?: number; offset?: number } = {},
  ): Promise<OrganizationView[]> {
    const qb = this.organizations
      .createQueryBuilder('o')
      .orderBy('lower(o.name)', 'ASC')
      .addOrderBy('o.id', 'ASC')
      .limit(Math.min(options.limit ?? 100, 500))
      .offset(options.offset ?? 0);
    if (options.search) {
      qb.where('lower(o.name) LIKE :q', {
        q: `%${options.search.toLowerCase().replace(/[%_\\]/g, '\\$&')}%`,
      });
    }
    return (await qb.getMany()).map(toOrganizationView);
  }

  /** The names of the given organizations (unknown ids are left out). */
  async names(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.organizations.find({ where: { id: In(ids) }, select: { id: true, name: true } });
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /**
   * Registered organizations whose FHIR base URL is `normalizedBase` (lower-cased, no trailing
   * slash: see normalizeIss), for the EHR launch allow-list.
   */
  async findByFhirBase(normalizedBase: string): Promise<{ id: string; name: string; slug: string }[]> {
    return this.organizations.query(
      `SELECT id, name, slug FROM organization
        WHERE epic_client_id IS NOT NULL AND lower(rtrim(fhir_base_url, '/')) = $1`,
      [normalizedBase],
    );
  }

  /** Other organizations registered with this FHIR base (compared as launches compare `iss`). */
  async organizationsSharingBase(
    fhirBaseUrl: string,
    exceptId: string,
  ): Promise<{ id: string; name: string; slug: string }[]> {
    const others = await this.findByFhirBase(fhirBaseKey(fhirBaseUrl));
    return others.filter((o) => o.id !== exceptId);
  }

  /** The organization with this slug (the patient "Connect my Epic account" link names it), or null. */
  async findBySlug(slug: string): Promise<OrganizationView | null> {
    const org = await this.organizations.findOneBy({ slug });
    return org ? toOrganizationView(org) : null;
  }

  async get(id: string): Promise<OrganizationView> {
    return toOrganizationView(await this.findOrFail(id));
  }

  async create(actor: AuditActor | null, dto: CreateOrganizationDto): Promise<OrganizationView> {
    const slug = dto.slug ?? slugify(dto.name);
    if (!slug) throw validationFailed({ slug: ['slug is required when the name has no letters or digits'] });
    try {
      const org = await this.organizations.save(
        this.organizations.create({
          name: dto.name,
          slug,
          epicEnvironment: dto.epicEnvironment ?? EpicEnvironment.Sandbox,
        }),
      );
      await this.audit.record({ actor, organization: org, action: 'organization.created', detail: { slug } });
      return toOrganizationView(org);
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictException(`An organization with the slug "${slug}" already exists`);
      }
      throw e;
    }
  }

  async update(actor: AuditActor | null, id: string, dto: UpdateOrganizationDto): Promise<OrganizationView> {
    const org = await this.findOrFail(id);
    const before = { name: org.name, slug: org.slug };
    Object.assign(org, Object.fromEntries(Object.entries(dto).filter(([, v]) => v !== undefined)));
    try {
      await this.organizations.save(org);
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictException(`An organization with the slug "${org.slug}" already exists`);
      }
      throw e;
    }
    await this.audit.record({
      actor,
      organization: org,
      action: 'organization.updated',
      detail: { before, after: { name: org.name, slug: org.slug } },
    });
    return toOrganizationView(org);
  }

  /**
   * Deletes the organization; its users, credentials and API keys go with it (ON DELETE CASCADE).
   * After the commit, emits `organizations.deleted` so this instance's caches forget it at once.
   */
  async remove(actor: AuditActor | null, id: string): Promise<void> {
    const org = await this.dataSource.transaction(async (manager) => {
      const found = await manager.findOneBy(Organization, { id });
      if (!found) throw new NotFoundException('Organization not found');
      await this.audit.record(
        { actor, organization: found, action: 'organization.deleted', detail: { slug: found.slug } },
        manager,
      );
      await manager.delete(Organization, { id });
      return found;
    });
    const event: OrganizationDeletedEvent = {
      organizationId: org.id,
      organizationName: org.name,
      actor: actor ? { id: actor.id, email: actor.email } : null,
    };
    await this.events.emitAsync(OrganizationEvents.Deleted, event);
  }

  /**
   * Saves the organization's Epic client. A blank secret keeps the stored one. Changing the client
   * id, base URL or environment invalidates the connection: it was made for the old registration.
   */
  async registerEpicClient(
    actor: (AuditActor & { role?: Role }) | null,
    id: string,
    dto: RegisterEpicClientDto,
  ): Promise<OrganizationView & { secretCleared: boolean }> {
    const org = await this.findOrFail(id);
    const requested =
      dto.fhirBaseUrl || (dto.environment === EpicEnvironment.Sandbox ? EPIC_SANDBOX_FHIR_BASE : '');
    if (!requested) {
      throw validationFailed({ fhirBaseUrl: ['fhirBaseUrl is required for a production environment'] });
    }
    const checked = checkFhirBaseUrl(requested, { production: this.config.isProduction });
    if (!checked.ok) throw validationFailed({ fhirBaseUrl: [checked.message] });

    const authMethod = dto.tokenAuthMethod ?? org.epicTokenAuthMethod;
    const mode = dto.connectionMode ?? org.epicConnectionMode;
    const problems = checkClientAuthentication({
      authMethod,
      mode,
      secretGiven: !!dto.clientSecret,
      scopes: dto.scopes !== undefined ? dto.scopes || null : org.epicScopes,
    });
    if (problems.length > 0) {
      const fields: FieldErrors = {};
      for (const problem of problems) (fields[problem.field] ??= []).push(problem.message);
      throw validationFailed(fields);
    }

    // With private_key_jwt, Epic trusts whatever the service's key signs: which client ID (at which
    // Epic) an organization may act as is the operator's decision, not the organization admin's.
    const binding =
      org.epicClientId !== dto.clientId ||
      org.fhirBaseUrl !== checked.url ||
      org.epicEnvironment !== dto.environment ||
      org.epicTokenAuthMethod !== authMethod ||
      org.epicConnectionMode !== mode;
    if (authMethod === TokenAuthMethod.PrivateKeyJwt && binding && actor && actor.role !== Role.RootAdmin) {
      const message =
        "Only a root administrator can set the Epic client of an organization that uses private_key_jwt: Epic accepts every assertion signed with this service's key, so the operator checks that the client ID and FHIR base URL belong to this organization. Ask a root administrator to save them; you can still change the scopes.";
      throw forbiddenField('clientId', message);
    }

    // EHR launches find their organization by FHIR base: another organization's base would make that
    // organization's launches ambiguous (or take them over), so sharing one is the operator's call.
    // Epic's public sandbox is shared by every sandbox organization by design.
    if (
      org.fhirBaseUrl !== checked.url &&
      checked.url !== EPIC_SANDBOX_FHIR_BASE &&
      actor &&
      actor.role !== Role.RootAdmin &&
      (await this.organizationsSharingBase(checked.url, org.id)).length > 0
    ) {
      const message =
        'Another organization already uses this FHIR base URL. Only a root administrator can register a FHIR server that several organizations share (their EHR launch URLs then name the organization).';
      throw forbiddenField('fhirBaseUrl', message);
    }

    const changed =
      org.epicClientId !== dto.clientId ||
      org.fhirBaseUrl !== checked.url ||
      org.epicEnvironment !== dto.environment ||
      // A backend-service connection and an admin's sign-in are different grants: neither carries over.
      org.epicConnectionMode !== mode;
    const secretChanged = !!dto.clientSecret;
    // With private_key_jwt no shared secret is used, so none is kept anywhere.
    const secretRemoved = authMethod === TokenAuthMethod.PrivateKeyJwt && org.clientSecretEnc !== null;
    // The secret was typed for one client at one server: pointing the registration elsewhere without
    // typing it again deletes it, so nobody can send it to a server of their choosing.
    const secretCleared =
      !secretChanged &&
      !secretRemoved &&
      org.clientSecretEnc !== null &&
      (org.epicClientId !== dto.clientId ||
        org.fhirBaseUrl !== checked.url ||
        org.epicEnvironment !== dto.environment);
    const previousFhirBaseUrl = org.fhirBaseUrl;
    org.epicClientId = dto.clientId;
    org.fhirBaseUrl = checked.url;
    org.epicEnvironment = dto.environment;
    if (dto.scopes !== undefined) org.epicScopes = dto.scopes || null;
    org.epicTokenAuthMethod = authMethod;
    org.epicConnectionMode = mode;
    if (dto.assertionAlg !== undefined) org.epicAssertionAlg = dto.assertionAlg;
    if (dto.scopeSyntax !== undefined) org.epicScopeSyntax = dto.scopeSyntax;
    // Only a label: naming the server keeps the connection. Blank (or null) clears the name.
    if (dto.fhirServerName !== undefined) org.fhirServerName = dto.fhirServerName || null;
    if (dto.basicEncoding !== undefined) org.epicBasicEncoding = dto.basicEncoding;
    // What a token endpoint accepted was learned for these credentials at that server.
    if (changed || secretChanged || secretRemoved) org.epicBasicEncodingDetected = null;
    if (dto.clientSecret) org.clientSecretEnc = this.cipher.encrypt(dto.clientSecret, secretContext(org.id));
    if (secretRemoved || secretCleared) org.clientSecretEnc = null;
    // A new secret is bound to the token endpoint of its first use; a removed one to nothing.
    if (secretChanged || secretRemoved || secretCleared) org.clientSecretTokenOrigin = null;
    // Tokens were issued to the old client at the old server: the organization's connection and its
    // users' ones end with the registration, in the same transaction as the change.
    const tokensCleared = await this.dataSource.transaction(async (manager) => {
      await manager.save(org);
      if (!changed) return false;
      await this.connections.endUserConnections(manager, org.id, REGISTRATION_CHANGED);
      return (await this.connections.disconnectOrganization(org.id, manager)) !== null;
    });
    await this.audit.record({
      actor,
      organization: org,
      action: 'epic-client.registered',
      detail: {
        clientId: dto.clientId,
        fhirBaseUrl: checked.url,
        environment: dto.environment,
        tokenAuthMethod: authMethod,
        connectionMode: mode,
        secretChanged,
        secretRemoved,
        secretCleared,
        connectionReset: changed,
        fhirServerName: org.fhirServerName,
      },
    });
    if (changed) {
      // EpicAuth forgets the old server's discovery and audits the cleared tokens.
      const event: EpicClientChangedEvent = {
        organizationId: org.id,
        organizationName: org.name,
        previousFhirBaseUrl,
        tokensCleared,
        actor,
      };
      await this.events.emitAsync(OrganizationEvents.EpicClientChanged, event);
    }
    return { ...toOrganizationView(org), secretCleared };
  }

  /**
   * What EpicAuth needs to start an authorization, or null when no client is registered.
   * The secret is not included: getClientSecret() is called only for the token request.
   */
  async getEpicRegistration(id: string): Promise<EpicRegistration | null> {
    const org = await this.findOrFail(id);
    if (!org.epicClientId || !org.fhirBaseUrl) return null;
    return {
      organizationId: org.id,
      organizationName: org.name,
      clientId: org.epicClientId,
      fhirBaseUrl: org.fhirBaseUrl,
      environment: org.epicEnvironment,
      scopes: org.epicScopes ?? defaultScopes(org.epicConnectionMode),
      hasClientSecret: org.clientSecretEnc !== null,
      tokenAuthMethod: org.epicTokenAuthMethod,
      scopeSyntax: org.epicScopeSyntax,
      assertionAlg: org.epicAssertionAlg,
      connectionMode: org.epicConnectionMode,
      basicEncoding:
        org.epicBasicEncoding === BasicCredentialEncoding.Auto
          ? {
              use: org.epicBasicEncodingDetected ?? 'form-urlencoded',
              fallback: true,
              detected: org.epicBasicEncodingDetected !== null,
            }
          : { use: org.epicBasicEncoding, fallback: false, detected: false },
      ...serverFields(org),
    };
  }

  /**
   * Remembers the client_secret_basic encoding a token endpoint accepted (with `auto`), unless the
   * credentials changed meanwhile (`clientId` is the one the call used).
   */
  async recordDetectedBasicEncoding(
    id: string,
    clientId: string,
    encoding: 'form-urlencoded' | 'raw',
  ): Promise<boolean> {
    const result = await this.organizations.update(
      { id, epicClientId: clientId, epicBasicEncoding: BasicCredentialEncoding.Auto },
      { epicBasicEncodingDetected: encoding },
    );
    return (result.affected ?? 0) > 0;
  }

  /** The organizations as the JSON API shows them: each with its own connection's health. */
  async withConnections<T extends OrganizationView>(views: T[]): Promise<(T & OrganizationJson)[]> {
    const states = await this.connections.organizationStates(views.map((v) => v.id));
    return views.map((view) => toOrganizationJson(view, states.get(view.id)));
  }

  async withConnection<T extends OrganizationView>(view: T): Promise<T & OrganizationJson> {
    return (await this.withConnections([view]))[0];
  }

  /**
   * The decrypted client secret, for a request to `tokenEndpoint` only. Never render or log it.
   * The secret is bound to the origin of the first token endpoint it is sent to after it was typed
   * (normally the registration page's Test Connection, a second after Save); a token endpoint on
   * another origin (discovery changed, or answered differently) is refused it with
   * ClientSecretBindingError, until an administrator types the secret again.
   */
  async getClientSecretFor(id: string, tokenEndpoint: string): Promise<string | null> {
    const org = await this.findOrFail(id);
    if (!org.clientSecretEnc) return null;
    const origin = new URL(tokenEndpoint).origin;
    if (org.clientSecretTokenOrigin === null) {
      // First use: bind, unless another instance bound it meanwhile (then compare with that).
      const bound = await this.organizations.update(
        { id, clientSecretEnc: org.clientSecretEnc, clientSecretTokenOrigin: IsNull() },
        { clientSecretTokenOrigin: origin },
      );
      if ((bound.affected ?? 0) === 0) return this.getClientSecretFor(id, tokenEndpoint);
    } else if (org.clientSecretTokenOrigin !== origin) {
      throw new ClientSecretBindingError(org.clientSecretTokenOrigin, origin, org.id);
    }
    return this.cipher.decrypt(org.clientSecretEnc, secretContext(org.id));
  }

  async listAdmins(id: string): Promise<UserView[]> {
    await this.findOrFail(id);
    return this.users.listOrgAdmins(id);
  }

  async createOrgAdmin(
    actor: AuditActor | null,
    id: string,
    dto: CreateOrgAdminDto,
  ): Promise<{ user: UserView; temporaryPassword?: string }> {
    const org = await this.findOrFail(id);
    const { user, generatedPassword } = await this.users.create({
      email: dto.email,
      role: Role.OrgAdmin,
      organizationId: org.id,
      password: dto.password,
    });
    await this.audit.record({
      actor,
      organization: org,
      action: 'org-admin.created',
      detail: { userId: user.id, email: user.email },
    });
    return { user, temporaryPassword: generatedPassword };
  }

  private async findOrFail(id: string): Promise<Organization> {
    const org = await this.organizations.findOneBy({ id });
    if (!org) throw new NotFoundException('Organization not found');
    return org;
  }
}

/** The EpicRegistration fields that say what the server is called and whether it is Epic. */
function serverFields(org: Organization): { serverName: string; isEpic: boolean } {
  const label = serverLabel({ fhirBaseUrl: org.fhirBaseUrl, fhirServerName: org.fhirServerName });
  return { serverName: label.name, isEpic: label.isEpic };
}

/** What a provider's or patient's page says when the organization's registration ended their connection. */
const REGISTRATION_CHANGED =
  "The organization's Epic registration changed (client, server or environment), so this connection ended. Connect again.";

function secretContext(orgId: string): string {
  return `organization:${orgId}:client_secret`;
}

/** 403 naming the one field the actor may not set. */
function forbiddenField(field: string, message: string): DomainError {
  return new DomainError(ErrorCode.Forbidden, message, { fields: { [field]: [message] } });
}

/**
 * A token endpoint on another origin than the one the client secret is bound to: 409
 * CLIENT_SECRET_REFUSED, should it reach a response (EpicAuth turns it into its own error).
 */
export class ClientSecretBindingError extends DomainError {
  constructor(
    readonly boundOrigin: string,
    readonly requestedOrigin: string,
    organizationId?: string,
  ) {
    super(
      ErrorCode.ClientSecretRefused,
      `The token endpoint is now at ${requestedOrigin}, not at ${boundOrigin} where the saved client secret was first used, so the secret was not sent. If the server really moved, enter the client secret again on the registration page.`,
      { organizationId },
    );
    this.name = 'ClientSecretBindingError';
  }
}
