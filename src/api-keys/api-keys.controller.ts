import { Body, Controller, Delete, Get, Param, Patch, Post } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { ERROR_SCHEMA } from 'src/openapi/openapi';
import { ManagementApi, SessionRead, SessionWrite } from 'src/openapi/openapi.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import type { ApiKeyView, CreatedApiKey } from './api-keys.types';
import { ApiKeysService, MAX_UNREVOKED_KEYS } from './api-keys.service';
import { ApiKeyParams, CreateApiKeyDto, UpdateApiKeyDto } from './dto/api-key.dto';

const VIEW = { $ref: '#/components/schemas/ApiKeyView' };
const conflict = (description: string) =>
  ApiConflictResponse({ description, schema: { $ref: `#/components/schemas/${ERROR_SCHEMA}` } });

/**
 * JSON API for an organization's API keys: its org admins and root admins (another
 * organization's id is a 404). Writes need the CSRF header like every session-authenticated write.
 */
@Controller('api/organizations/:orgId/api-keys')
@ManagementApi('API keys')
@Roles(Role.RootAdmin, Role.OrgAdmin)
@OrgScope()
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @SessionRead()
  @ApiOperation({
    summary: 'List the organization’s keys',
    description:
      'Newest first, at most 500, revoked ones included (history). No query parameters: no filter or paging.',
  })
  @ApiOkResponse({
    description: 'Every key of the organization',
    schema: { type: 'array', maxItems: 500, items: VIEW },
  })
  @Get()
  list(@Param() { orgId }: OrgIdParam): Promise<ApiKeyView[]> {
    return this.keys.list(orgId);
  }

  /** 201 with the key and `secret`, the whole key string: shown in this answer only. */
  @SessionWrite()
  @ApiOperation({ summary: 'Create a key', description: 'The whole key is in this answer only.' })
  @ApiCreatedResponse({
    description: 'The key and, this once, the whole key string',
    schema: { $ref: '#/components/schemas/CreatedApiKey' },
  })
  @conflict(`CONFLICT: the organization already holds ${MAX_UNREVOKED_KEYS} keys that are not revoked`)
  @Post()
  create(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateApiKeyDto,
  ): Promise<CreatedApiKey> {
    return this.keys.create(user, orgId, dto);
  }

  @SessionRead()
  @ApiOperation({ summary: 'One key' })
  @ApiOkResponse({ description: 'The key (never its secret)', schema: VIEW })
  @Get(':keyId')
  get(@Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.get(orgId, keyId);
  }

  @SessionWrite()
  @ApiOperation({
    summary: 'Change a key',
    description: 'An absent field is kept; `null` sets `resourceTypes` to all and `expiresAt` to never.',
  })
  @ApiOkResponse({ description: 'The key as changed (never its secret)', schema: VIEW })
  @conflict(
    'CONFLICT: the key is revoked or expired: it has ended and cannot be changed (nor given a new expiry)',
  )
  @Patch(':keyId')
  update(
    @CurrentUser() user: AuthUser,
    @Param() { orgId, keyId }: ApiKeyParams,
    @Body() dto: UpdateApiKeyDto,
  ): Promise<ApiKeyView> {
    return this.keys.update(user, orgId, keyId, dto);
  }

  /** Revokes the key (idempotent): 200 with the revoked key. */
  @SessionWrite()
  @ApiOperation({
    summary: 'Revoke a key',
    description: 'Idempotent: revoking a revoked key changes nothing.',
  })
  @ApiOkResponse({ description: 'The revoked key (never its secret)', schema: VIEW })
  @Delete(':keyId')
  revoke(@CurrentUser() user: AuthUser, @Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.revoke(user, orgId, keyId);
  }
}
