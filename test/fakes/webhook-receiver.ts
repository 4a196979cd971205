import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** The status the receiver answered. */
  status: number;
}

/** A webhook endpoint on loopback (a chat or paging integration) that can fail on demand. */
export interface WebhookReceiver {
  url: string;
  /** Every request, answered or failed, oldest first. */
  requests: ReceivedWebhook[];
  /** Requests answered 2xx. */
  delivered(): ReceivedWebhook[];
  /** Answer the next `count` requests with `status`. */
  failNext(count: number, status?: number): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedWebhook[] = [];
  const failures: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = failures.shift() ?? 204;
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        body = { unparsable: true };
      }
      requests.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/epic-connect`,
    requests,
    delivered: () => requests.filter((r) => r.status >= 200 && r.status < 300),
    failNext: (count, status = 500) => failures.push(...Array<number>(count).fill(status)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
