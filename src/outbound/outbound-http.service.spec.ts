import { createServer, request, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import type { AppConfig } from 'src/config/app-config';

import { OutboundHttp } from './outbound-http.service';

const config = (policy: 'any' | 'public'): AppConfig =>
  ({ env: { OUTBOUND_ADDRESS_POLICY: policy }, isProduction: false }) as unknown as AppConfig;

describe('OutboundHttp agents', () => {
  it.each(['any', 'public'] as const)(
    'keep FHIR connections for the next request, and close them after 30 s unused (%s)',
    async (policy) => {
      const outbound = new OutboundHttp(config(policy));
      try {
        // Node's Agent keeps both on the instance (typed as internals in @types/node).
        for (const agent of [outbound.httpAgent, outbound.httpsAgent] as unknown as {
          keepAlive: boolean;
          options: { timeout?: number };
        }[]) {
          expect(agent.keepAlive).toBe(true);
          expect(agent.options.timeout).toBe(30_000);
        }
      } finally {
        await outbound.onApplicationShutdown();
      }
    },
  );

  describe('with a server', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      server = createServer((_req, res) => res.end('ok'));
      // A server that would keep idle connections for 2 minutes (its Keep-Alive: timeout=120):
      // the agent's own 30 s applies (Node's Agent takes the shorter).
      server.keepAliveTimeout = 120_000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it('reuses a pooled connection, and drops it once it has been idle for its timeout', async () => {
      const outbound = new OutboundHttp(config('any'));
      const get = () =>
        new Promise<{ reused: boolean; socket: Socket }>((resolve, reject) => {
          const req = request(url, { agent: outbound.httpAgent }, (res) => {
            res.resume();
            res.on('end', () => resolve({ reused: req.reusedSocket, socket: req.socket! }));
          });
          req.on('error', reject);
          req.end();
        });
      try {
        const first = await get();
        const second = await get();
        expect(second).toMatchObject({ reused: true, socket: first.socket });
        // The idle timeout, as the agent set it on the pooled socket; firing it closes the socket.
        expect(first.socket.timeout).toBe(30_000);
        const closed = new Promise((resolve) => first.socket.once('close', resolve));
        first.socket.emit('timeout');
        await closed;
        expect((await get()).reused).toBe(false);
      } finally {
        await outbound.onApplicationShutdown();
      }
    });
  });
});
