import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Socket } from 'node:net';

import { Agent, buildConnector } from 'undici';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { guardedLookup, literalAddressRefusal, OutboundAddressPolicy, parseNetworks } from './outbound-guard';

/**
 * The way out to servers an administrator named (Epic's discovery, token, JWK Set and FHIR
 * endpoints): `fetch` for the first three, `httpAgent`/`httpsAgent` for axios. With the `public`
 * policy (the default in production) each connection's resolved address is checked against the
 * private and reserved ranges (outbound-guard.ts); with `any` (the default elsewhere, where the
 * fake Epic listens on loopback) they are plain.
 */
@Injectable()
export class OutboundHttp implements OnApplicationShutdown {
  private readonly logger = new Logger(OutboundHttp.name);
  readonly policy: OutboundAddressPolicy;
  /** Keep-alive agents for the FHIR API (FhirClient's axios and its forwarder), guarded under `public`. */
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  private readonly dispatcher?: Agent;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.policy = config.env.OUTBOUND_ADDRESS_POLICY ?? (config.isProduction ? 'public' : 'any');
    if (this.policy === 'public') {
      const allowed = parseNetworks(config.env.OUTBOUND_ALLOWED_NETWORKS);
      const lookup = guardedLookup(allowed);
      // A host written as an IP address is connected to without a lookup: checked before connecting.
      const connect = buildConnector({ lookup });
      this.dispatcher = new Agent({
        connect: (options, callback) => {
          const refused = literalAddressRefusal(options.hostname, allowed);
          if (refused) callback(refused, null);
          else connect(options, callback);
        },
      });
      this.httpAgent = guardAgent(new HttpAgent({ ...POOL, lookup }), allowed);
      this.httpsAgent = guardAgent(new HttpsAgent({ ...POOL, lookup }), allowed);
    } else {
      this.httpAgent = new HttpAgent(POOL);
      this.httpsAgent = new HttpsAgent(POOL);
    }
    this.logger.log(
      { policy: this.policy },
      this.policy === 'public'
        ? 'Outbound requests to administrator-given addresses refuse private and reserved networks'
        : 'Outbound requests may reach any address (OUTBOUND_ADDRESS_POLICY=any)',
    );
  }

  /**
   * `fetch`, through the guarded connections when the policy is `public`. Node's fetch takes an
   * undici `dispatcher` option that its RequestInit type does not declare (and the undici package's
   * Agent type differs from the copy bundled in Node's types), hence the cast.
   */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    fetch(
      input,
      this.dispatcher ? ({ ...init, dispatcher: this.dispatcher } as unknown as RequestInit) : init,
    );

  async onApplicationShutdown(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    await this.dispatcher?.close();
  }
}

/**
 * Connections to FHIR servers are kept for the next request, and closed after POOL_IDLE_MS unused:
 * below the idle timeouts of the servers and load balancers in front of them (60 s and more is
 * usual), so a request is not sent on a connection the other end has just closed (ECONNRESET, which
 * a write that may not be sent twice cannot retry). A server's own `Keep-Alive: timeout=` is
 * honoured too (Node's Agent).
 */
const POOL_IDLE_MS = 30_000;
const POOL = { keepAlive: true, timeout: POOL_IDLE_MS };

type ConnectionCallback = (err: Error | null, socket?: Socket) => void;

/** Makes a node http(s) agent refuse blocked IP-literal hosts too (names go through `lookup`). */
function guardAgent<T extends HttpAgent>(agent: T, allowed: ReturnType<typeof parseNetworks>): T {
  const inner = agent as unknown as {
    createConnection(options: { host?: string }, callback: ConnectionCallback): Socket | undefined;
  };
  const original = inner.createConnection.bind(agent);
  inner.createConnection = (options, callback) => {
    const refused = literalAddressRefusal(options.host ?? '', allowed);
    if (!refused) return original(options, callback);
    process.nextTick(() => callback(refused));
    return undefined;
  };
  return agent;
}
