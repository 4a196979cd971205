import { Body, Controller, Delete, Get, Param, Patch, Post } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import type { ApiKeyView, CreatedApiKey } from './api-keys.types';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyParams, CreateApiKeyDto, UpdateApiKeyDto } from './dto/api-key.dto';
import { ApiCreatedResponse, ApiOkResponse } from '@nestjs/swagger';
import { ManagementApi, SessionRead, SessionWrite } from 'src/openapi/openapi.decorators';

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
  @ApiOkResponse({
    description: 'Every key of the organization',
    schema: { type: 'array', items: { $ref: '#/components/schemas/ApiKeyView' } },
  })
  @Get()
  list(@Param() { orgId }: OrgIdParam): Promise<ApiKeyView[]> {
    return this.keys.list(orgId);
  }

  /** 201 with the key and `secret`, the whole key string: shown in this answer only. */
  @SessionWrite()
  @ApiCreatedResponse({
    description: 'The key and, this once, the whole key string',
    schema: { $ref: '#/components/schemas/CreatedApiKey' },
  })
  @Post()
  create(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateApiKeyDto,
  ): Promise<CreatedApiKey> {
    return this.keys.create(user, orgId, dto);
  }

  @SessionRead()
  @ApiOkResponse({
    description: 'The key (never its secret)',
    schema: { $ref: '#/components/schemas/ApiKeyView' },
  })
  @Get(':keyId')
  get(@Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.get(orgId, keyId);
  }

  @SessionWrite()
  @ApiOkResponse({
    description: 'The key (never its secret)',
    schema: { $ref: '#/components/schemas/ApiKeyView' },
  })
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
  @ApiOkResponse({
    description: 'The key (never its secret)',
    schema: { $ref: '#/components/schemas/ApiKeyView' },
  })
  @Delete(':keyId')
  revoke(@CurrentUser() user: AuthUser, @Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.revoke(user, orgId, keyId);
  }
}
