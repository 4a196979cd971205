import { Body, Controller, Delete, Get, Param, Patch, Post } from '@nestjs/common';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import type { ApiKeyView, CreatedApiKey } from './api-keys.types';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyParams, CreateApiKeyDto, UpdateApiKeyDto } from './dto/api-key.dto';

/**
 * JSON API for an organization's API keys: its org admins and root admins (another
 * organization's id is a 404). Writes need the CSRF header like every session-authenticated write.
 */
@Controller('api/organizations/:orgId/api-keys')
@Roles(Role.RootAdmin, Role.OrgAdmin)
@OrgScope()
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Get()
  list(@Param() { orgId }: OrgIdParam): Promise<ApiKeyView[]> {
    return this.keys.list(orgId);
  }

  /** 201 with the key and `secret`, the whole key string: shown in this answer only. */
  @Post()
  create(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateApiKeyDto,
  ): Promise<CreatedApiKey> {
    return this.keys.create(user, orgId, dto);
  }

  @Get(':keyId')
  get(@Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.get(orgId, keyId);
  }

  @Patch(':keyId')
  update(
    @CurrentUser() user: AuthUser,
    @Param() { orgId, keyId }: ApiKeyParams,
    @Body() dto: UpdateApiKeyDto,
  ): Promise<ApiKeyView> {
    return this.keys.update(user, orgId, keyId, dto);
  }

  /** Revokes the key (idempotent): 200 with the revoked key. */
  @Delete(':keyId')
  revoke(@CurrentUser() user: AuthUser, @Param() { orgId, keyId }: ApiKeyParams): Promise<ApiKeyView> {
    return this.keys.revoke(user, orgId, keyId);
  }
}
