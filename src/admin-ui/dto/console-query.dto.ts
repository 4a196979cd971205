import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

import { CONNECTION_STATES } from 'src/connections/connections.read-model';

export const CONSOLE_SORTS = ['name', 'state', 'expiry', 'last_sync'] as const;
export type ConsoleSort = (typeof CONSOLE_SORTS)[number];

/** `/admin?state=…&q=…&sort=…&page=…`: the root admin console's filter, search, sort and page. */
export class ConsoleQueryDto {
  @IsOptional()
  @IsIn([...CONNECTION_STATES, 'attention'], { message: 'state must be a connection state or "attention"' })
  state?: (typeof CONNECTION_STATES)[number] | 'attention';

  @IsOptional()
  @IsString()
  @MaxLength(100)
  q?: string;

  @IsOptional()
  @IsIn(CONSOLE_SORTS, { message: `sort must be one of ${CONSOLE_SORTS.join(', ')}` })
  sort?: ConsoleSort;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100_000)
  page?: number;
}
