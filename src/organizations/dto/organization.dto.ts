import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsEmail,
  IsEnum,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  MaxLength,
  MinLength,
} from 'class-validator';

import { IsHeaderSafeText, IsHeaderToken, IsSingleLineText } from 'src/common/validation/text-rules';
import { PASSWORD_MIN_LENGTH } from 'src/users/user.types';

import {
  AssertionAlg,
  BasicCredentialEncoding,
  ConnectionMode,
  EpicEnvironment,
  ScopeSyntax,
  TokenAuthMethod,
} from '../organization.types';

const trim = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);
/** An optional field left blank in an HTML form arrives as '': treat it as absent. */
const trimToUndefined = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.trim() || undefined : value;

export class OrgIdParam {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'orgId must be a UUID' })
  orgId!: string;
}

export class CreateOrganizationDto {
  @ApiProperty({ minLength: 1, maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200, { message: 'name must be 1 to 200 characters' })
  @IsSingleLineText()
  name!: string;

  /** Defaults to one made from the name. */
  @ApiPropertyOptional({
    pattern: '^[a-z0-9]+(-[a-z0-9]+)*$',
    maxLength: 100,
    description: 'Default: made from the name',
  })
  @IsOptional()
  @Transform(trimToUndefined)
  @Matches(/^[a-z0-9]+(-[a-z0-9]+)*$/, {
    message: 'slug may contain lowercase letters, digits and single hyphens',
  })
  @MaxLength(100)
  slug?: string;

  @ApiPropertyOptional({ enum: EpicEnvironment })
  @IsOptional()
  @IsEnum(EpicEnvironment, { message: 'epicEnvironment must be sandbox or production' })
  epicEnvironment?: EpicEnvironment;
}

export class UpdateOrganizationDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200 })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 200, { message: 'name must be 1 to 200 characters' })
  @IsSingleLineText()
  name?: string;

  @ApiPropertyOptional({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 100 })
  @IsOptional()
  @Transform(trim)
  @Matches(/^[a-z0-9]+(-[a-z0-9]+)*$/, {
    message: 'slug may contain lowercase letters, digits and single hyphens',
  })
  @MaxLength(100)
  slug?: string;
}

/** Epic client registration. The secret is write-only: blank or absent keeps the stored one. */
export class RegisterEpicClientDto {
  @ApiProperty({ minLength: 1, maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200, { message: 'clientId must be 1 to 200 characters' })
  @IsHeaderToken() // sent in the Authorization header and in assertions
  clientId!: string;

  @ApiPropertyOptional({
    maxLength: 500,
    writeOnly: true,
    description: 'Blank or absent keeps the saved one',
  })
  @IsOptional()
  @IsString()
  @MaxLength(500, { message: 'clientSecret must be at most 500 characters' })
  @IsHeaderSafeText() // sent in the Authorization header (client_secret_basic)
  clientSecret?: string;

  @ApiProperty({ enum: EpicEnvironment })
  @IsEnum(EpicEnvironment, { message: 'environment must be sandbox or production' })
  environment!: EpicEnvironment;

  @ApiPropertyOptional({ enum: TokenAuthMethod })
  @IsOptional()
  @IsEnum(TokenAuthMethod, {
    message: 'tokenAuthMethod must be client_secret_basic, client_secret_post or private_key_jwt',
  })
  tokenAuthMethod?: TokenAuthMethod;

  /** With private_key_jwt: the algorithm of the service key that signs assertions. */
  @ApiPropertyOptional({ enum: AssertionAlg })
  @IsOptional()
  @IsEnum(AssertionAlg, { message: 'assertionAlg must be RS384 or ES384' })
  assertionAlg?: AssertionAlg;

  /** interactive (an admin signs in at Epic) or backend (client_credentials with private_key_jwt). */
  @ApiPropertyOptional({ enum: ConnectionMode })
  @IsOptional()
  @IsEnum(ConnectionMode, { message: 'connectionMode must be interactive or backend' })
  connectionMode?: ConnectionMode;

  @ApiPropertyOptional({ enum: ScopeSyntax })
  @IsOptional()
  @IsEnum(ScopeSyntax, { message: 'scopeSyntax must be v1 or v2' })
  scopeSyntax?: ScopeSyntax;

  /** client_secret_basic: how the ID and secret are encoded. `auto` (default) detects it. */
  @ApiPropertyOptional({ enum: BasicCredentialEncoding })
  @IsOptional()
  @IsEnum(BasicCredentialEncoding, { message: 'basicEncoding must be auto, form-urlencoded or raw' })
  basicEncoding?: BasicCredentialEncoding;

  /** Space-separated data scopes to request, e.g. "user/Patient.read user/Observation.read". Blank: the defaults. */
  @ApiPropertyOptional({ maxLength: 2000, example: 'user/Patient.read user/Observation.read' })
  @IsOptional()
  @Transform(trim)
  @Matches(/^([A-Za-z0-9_./*:-]+( [A-Za-z0-9_./*:-]+)*)?$/, {
    message: 'scopes must be scope names separated by single spaces (e.g. user/Patient.read)',
  })
  @MaxLength(2000)
  scopes?: string;

  /** Required for production; sandbox defaults to Epic's public sandbox. Rules in checkFhirBaseUrl. */
  @ApiPropertyOptional({ format: 'uri', maxLength: 2048, description: 'Required for production' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @MaxLength(2048)
  @IsHeaderSafeText() // becomes the request line and Host of every call to Epic
  fhirBaseUrl?: string;

  /**
   * What to call the FHIR server on the pages ("Cerner Millennium"); a name containing "Epic" keeps
   * Epic's help (server-label.ts). Absent keeps the saved one; blank or null clears it.
   */
  @ApiPropertyOptional({ type: 'string', maxLength: 100, nullable: true })
  @IsOptional()
  @Transform(trim)
  @IsString({ message: 'fhirServerName must be text' })
  @MaxLength(100, { message: 'fhirServerName must be at most 100 characters' })
  @Matches(/^[^\p{C}]*$/u, { message: 'fhirServerName must be printable text (no control characters)' })
  @IsSingleLineText()
  fhirServerName?: string | null;
}

export class CreateOrgAdminDto {
  @ApiProperty({ format: 'email', maxLength: 320 })
  @Transform(trim)
  @IsEmail({ require_tld: false }, { message: 'email must be an email address' })
  @MaxLength(320)
  email!: string;

  /** Omit to generate a temporary password, shown once and changed at first login. */
  @ApiPropertyOptional({
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: 200,
    writeOnly: true,
    description: 'Omit to generate a temporary password',
  })
  @IsOptional()
  @IsString()
  @MinLength(PASSWORD_MIN_LENGTH, { message: `password must be at least ${PASSWORD_MIN_LENGTH} characters` })
  @MaxLength(200)
  password?: string;
}
