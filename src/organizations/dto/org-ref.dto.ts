import { ApiProperty } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';

/** `?org=` or `{ "org": … }`: the organization a request is about (OrgScope checks access). */
export class OrgRefDto {
  @ApiProperty({ format: 'uuid', description: 'The organization id' })
  @IsUUID('all', { message: 'org must be an organization id' })
  org!: string;
}
