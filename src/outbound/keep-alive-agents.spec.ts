import { createServer, request, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { KeepAliveHttpAgent } from './keep-alive-agents';

describe('KeepAliveHttpAgent', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  /** One GET: whether it reused a pooled socket, and the socket. */
  const get = (agent: KeepAliveHttpAgent) =>
    new Promise<{ reused: boolean; socket: Socket }>((resolve, reject) => {
      const req = request(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ reused: req.reusedSocket, socket: req.socket! }));
      });
      req.on('error', reject);
      req.end();
    });

  it('keeps sockets alive, turning TCP keep-alive on for the first request only', async () => {
    const agent = new KeepAliveHttpAgent();
    const calls: unknown[][] = [];
    const first = await get(agent);
    expect(first.reused).toBe(false);
    // Spy on the pooled socket from here on: Node's keepSocketAlive calls setKeepAlive each time.
    const original = first.socket.setKeepAlive.bind(first.socket);
    first.socket.setKeepAlive = (...args: unknown[]) => {
      calls.push(args);
      return original(...(args as Parameters<Socket['setKeepAlive']>));
    };
    for (let i = 0; i < 3; i++) {
      const next = await get(agent);
      expect(next.reused).toBe(true);
      expect(next.socket).toBe(first.socket);
    }
    expect(calls).toEqual([]);
    // The socket's own method is left as it was between requests.
    first.socket.setKeepAlive(true, 1000);
    expect(calls).toEqual([[true, 1000]]);
    agent.destroy();
  });

  it('keeps the first keep-alive of every socket (a plain Agent would repeat it each time)', async () => {
    const agent = new KeepAliveHttpAgent({ keepAliveMsecs: 2000 });
    const seen: unknown[][] = [];
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = request(url, { agent }, (res) => res.resume());
      req.on('socket', (s: Socket) => {
        const original = s.setKeepAlive.bind(s);
        s.setKeepAlive = (...args: unknown[]) => {
          seen.push(args);
          return original(...(args as Parameters<Socket['setKeepAlive']>));
        };
        resolve(s);
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise((resolve) =>
      socket.once('free', resolve).once('agentRemove', resolve).once('close', resolve),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([[true, 2000]]);
    agent.destroy();
  });
});
