import { QueryLimit } from 'src/openapi/openapi.decorators';

export class AuditQuery {
  @QueryLimit(200, 50, 'At most this many, newest first')
  limit?: number;
}
