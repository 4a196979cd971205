import { IsOptional, IsString } from 'class-validator';

import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';

/** `/admin/epic/registration?org=…&saved=1`: the organization, and whether it was just saved. */
export class RegistrationPageQueryDto extends OrgRefDto {
  /** `1` right after a save: the page runs Test Connection by itself. */
  @IsOptional()
  @IsString()
  saved?: string;
}
