import { ApiProperty, PartialType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  registerDecorator,
  ValidateIf,
  ValidationOptions,
} from 'class-validator';

import { IsSingleLineText } from 'src/common/validation/text-rules';
// A FHIR resource type name as FHIR spells them (`Patient`, `MedicationRequest`): one pattern everywhere.
import { RESOURCE_TYPE_PATTERN } from 'src/fhir-client/fhir-client.service';

import { KEY_ID_PATTERN } from '../api-key-format';
import { isFhirR4ResourceType } from '../fhir-r4-resource-types';
import { API_KEY_ACCESS, type ApiKeyAccess } from '../api-keys.types';

export const MAX_RESOURCE_TYPES = 100;

/**
 * A date, or a date and time with its offset (`2030-01-31`, `2030-01-31T12:00:00Z`,
 * `…+02:00`): a time without an offset would be read in the server's time zone.
 */
const DATE_WITH_ZONE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

const trim = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);

/** A date in the future, checked when the request is validated. */
function IsFutureDate(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'isFutureDate',
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message: ({ property }) => `${property} must be in the future`, ...options },
      validator: {
        validate: (value: unknown) => typeof value === 'string' && new Date(value).getTime() > Date.now(),
      },
    });
}

/** Validated when present; `null` is refused (unlike IsOptional, which would let it through). */
const Given = (): PropertyDecorator => ValidateIf((_: object, value: unknown) => value !== undefined);

/** The rules of the fields create and update share. */
function Name(): PropertyDecorator {
  return (target, key) => {
    Transform(trim)(target, key);
    IsString()(target, key);
    Length(1, 100, { message: 'name must be 1 to 100 characters' })(target, key);
    IsSingleLineText()(target, key);
  };
}

function Access(): PropertyDecorator {
  return IsIn(API_KEY_ACCESS, { message: 'access must be read or read_write' });
}

/** A list names the allowed resource types (`null`, let through by IsOptional, allows all). */
function ResourceTypes(): PropertyDecorator {
  return (target, key) => {
    IsArray({ message: 'resourceTypes must be a list of FHIR resource types, or null for all' })(target, key);
    ArrayMinSize(1, {
      message: 'resourceTypes must name at least one resource type, or be null for all',
    })(target, key);
    ArrayMaxSize(MAX_RESOURCE_TYPES, {
      message: `resourceTypes may name at most ${MAX_RESOURCE_TYPES} resource types`,
    })(target, key);
    Matches(RESOURCE_TYPE_PATTERN, {
      each: true,
      message: 'each of resourceTypes must be a FHIR resource type name such as Patient or Observation',
    })(target, key);
    AreFhirR4ResourceTypes()(target, key);
  };
}

/** The well-formed names in `value` that are no FHIR R4 resource type (malformed ones are Matches' to report). */
function unknownResourceTypes(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const names = value.filter(
    (v): v is string => typeof v === 'string' && RESOURCE_TYPE_PATTERN.test(v) && !isFhirR4ResourceType(v),
  );
  return [...new Set(names)];
}

/**
 * Every well-formed name is a resource type of FHIR R4 (FHIR_R4_RESOURCE_TYPES, the version Epic
 * serves); the message names the unknown ones, so a typo is found at once.
 */
function AreFhirR4ResourceTypes(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'areFhirR4ResourceTypes',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: ({ value }) => {
          const unknown = unknownResourceTypes(value);
          const shown =
            unknown.slice(0, 5).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '');
          return `resourceTypes names ${unknown.length === 1 ? 'a type' : 'types'} that FHIR R4 does not define: ${shown}. Use resource type names as FHIR R4 spells them, such as Patient or Observation (http://hl7.org/fhir/R4/resourcelist.html)`;
        },
      },
      validator: { validate: (value: unknown) => unknownResourceTypes(value).length === 0 },
    });
}

/** When the key stops working (`null`, let through by IsOptional: never). */
function ExpiresAt(): PropertyDecorator {
  return (target, key) => {
    Matches(DATE_WITH_ZONE, {
      message: 'expiresAt must be an ISO 8601 date, or a date and time with Z or an offset',
    })(target, key);
    IsISO8601({ strict: true }, { message: 'expiresAt must be a valid date' })(target, key);
    IsFutureDate()(target, key);
  };
}

/** `POST /api/organizations/:orgId/api-keys`. */
export class CreateApiKeyDto {
  @ApiProperty({ type: 'string', minLength: 1, maxLength: 100 })
  @Name()
  name!: string;

  /** Default `read`: a key that writes is asked for. */
  @ApiProperty({ enum: ['read', 'read_write'], required: false, description: 'Default `read`' })
  @Given()
  @Access()
  access?: ApiKeyAccess;

  @ApiProperty({
    type: [String],
    nullable: true,
    required: false,
    description:
      'FHIR R4 resource types the key may touch (http://hl7.org/fhir/R4/resourcelist.html; an unknown one is refused); null: all',
  })
  @IsOptional()
  @ResourceTypes()
  resourceTypes?: string[] | null;

  /** Whether the key may act with the organization's users' own connections (default false). */
  @ApiProperty({
    type: 'boolean',
    required: false,
    description: "May act with the organization's users' own connections (`X-Epic-Connect-User`)",
  })
  @Given()
  @IsBoolean({ message: 'userConnections must be true or false' })
  userConnections?: boolean;

  @ApiProperty({
    type: 'string',
    format: 'date-time',
    nullable: true,
    required: false,
    description: 'ISO 8601, in the future; null: never',
  })
  @IsOptional()
  @ExpiresAt()
  expiresAt?: string | null;
}

/**
 * `PATCH …/api-keys/:keyId`: the fields of CreateApiKeyDto, each optional; an absent field keeps its
 * value, `null` clears `resourceTypes` (all) and `expiresAt` (never). Derived with the Swagger
 * mapped type so the rules and the OpenAPI schema cannot drift apart. `skipNullProperties: false`
 * validates a present `null` (ValidateIf defined, not IsOptional): `name`, `access` and
 * `userConnections` refuse it as before, while `resourceTypes` and `expiresAt` keep their own
 * IsOptional, which lets `null` through.
 */
export class UpdateApiKeyDto extends PartialType(CreateApiKeyDto, { skipNullProperties: false }) {}

/** `/api/organizations/:orgId/api-keys/:keyId`. */
export class ApiKeyParams {
  @ApiProperty({ format: 'uuid', description: 'The organization' })
  @IsUUID('all', { message: 'orgId must be a UUID' })
  orgId!: string;

  @ApiProperty({
    pattern: KEY_ID_PATTERN.source,
    example: 'k3y1d0000000',
    description: 'The key id: the part after `ecgk_` in the key’s prefix (`ecgk_<keyId>`)',
  })
  @Matches(KEY_ID_PATTERN, { message: 'keyId must be 12 lowercase letters or digits' })
  keyId!: string;
}
