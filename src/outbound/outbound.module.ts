import { Global, Module } from '@nestjs/common';

import { OutboundHttp } from './outbound-http.service';

/** Guarded outbound HTTP for administrator-given addresses (OUTBOUND_ADDRESS_POLICY). */
@Global()
@Module({ providers: [OutboundHttp], exports: [OutboundHttp] })
export class OutboundModule {}
