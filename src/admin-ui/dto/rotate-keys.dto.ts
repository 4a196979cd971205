import { IsIn } from 'class-validator';

import { KEY_ENVIRONMENTS, type KeyEnvironment } from 'src/client-keys/client-keys.types';

/** "Start rotation" of one key set. */
export class RotateKeysDto {
  @IsIn(KEY_ENVIRONMENTS, { message: 'environment must be sandbox or production' })
  environment!: KeyEnvironment;
}
