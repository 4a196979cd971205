import { IsString, MaxLength, MinLength } from 'class-validator';

import { PASSWORD_MIN_LENGTH } from 'src/users/user.types';

export class ChangePasswordDto {
  @IsString()
  @MaxLength(200)
  currentPassword!: string;

  @IsString()
  @MinLength(PASSWORD_MIN_LENGTH, {
    message: `New password must be at least ${PASSWORD_MIN_LENGTH} characters`,
  })
  @MaxLength(200)
  newPassword!: string;

  @IsString()
  @MaxLength(200)
  confirmPassword!: string;
}
