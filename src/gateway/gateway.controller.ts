import { All, Controller, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { Response } from 'express';

import { Public } from 'src/common/decorators/auth.decorators';

import { ApiKeyGuard, GatewayRequest } from './api-key.guard';
import { GatewayExceptionFilter } from './gateway-exception.filter';
import { GatewayService } from './gateway.service';

/**
 * `<PUBLIC_BASE_URL>/gateway/<org-slug>/fhir/…`, every method: a FHIR server for the organization's
 * API-key holders. No session (AuthModule's middleware skips /gateway/): the API key is the only
 * credential (ApiKeyGuard); errors are OperationOutcomes (GatewayExceptionFilter).
 */
@Controller('gateway/:slug/fhir')
@Public()
@UseGuards(ApiKeyGuard)
@UseFilters(GatewayExceptionFilter)
export class GatewayController {
  constructor(private readonly gateway: GatewayService) {}

  /** The whole FHIR RESTful API: the base itself (batch, transaction) and every path under it. */
  @All(['', '{*path}'])
  forward(@Req() req: GatewayRequest, @Res() res: Response): Promise<void> {
    return this.gateway.forward(req.gatewayCaller!, req, res);
  }
}
