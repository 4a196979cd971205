import { Worker } from 'node:worker_threads';

import { emptyResult, LoadResult } from './load';

/** One HTTP GET, repeated: its URL and headers. */
export interface GetTarget {
  url: string;
  headers: Record<string, string>;
}

export interface WorkerResult extends LoadResult {
  /** CPU time of the load thread itself (user + system, µs). */
  clientCpuMicros: number;
}

/**
 * The load client in a thread of its own: a closed loop of GETs on keep-alive sockets, as `runLoad`
 * does, but on another event loop (another core), so that the client's own work (building requests,
 * parsing answers) does not queue behind the app's on the app's thread, nor the app's behind it.
 * Plain JavaScript evaluated in the worker: it needs nothing of the project.
 */
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function get(url, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error('HTTP ' + res.statusCode))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
parentPort.on('message', async ({ id, url, headers, total, concurrency }) => {
  const latencies = new Float64Array(total);
  let done = 0, next = 0, errors = 0;
  const failures = new Map();
  const cpu = process.threadCpuUsage();
  const worker = async () => {
    while (next < total) {
      next += 1;
      const start = performance.now();
      try {
        await get(url, headers);
        latencies[done++] = performance.now() - start;
      } catch (error) {
        errors += 1;
        const message = error instanceof Error ? error.message : String(error);
        failures.set(message, (failures.get(message) || 0) + 1);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const wallMs = performance.now() - started;
  const used = process.threadCpuUsage(cpu);
  parentPort.postMessage({ id, latencies: latencies.slice(0, done), errors, failures: [...failures], wallMs,
    clientCpuMicros: used.user + used.system });
});
`;

export class LoadWorker {
  private readonly worker = new Worker(SOURCE, { eval: true });
  private nextId = 0;

  /** `total` GETs of `target`, `concurrency` at a time, added to `into` when given. */
  run(target: GetTarget, total: number, concurrency: number, into?: WorkerResult): Promise<WorkerResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (message: {
        id: number;
        latencies: Float64Array;
        errors: number;
        failures: [string, number][];
        wallMs: number;
        clientCpuMicros: number;
      }): void => {
        if (message.id !== id) return;
        this.worker.off('message', onMessage);
        this.worker.off('error', reject);
        const result: WorkerResult = into ?? { ...emptyResult(), clientCpuMicros: 0 };
        for (const latency of message.latencies) result.latencies.push(latency);
        result.wallMs += message.wallMs;
        result.errors += message.errors;
        result.clientCpuMicros += message.clientCpuMicros;
        for (const [text, n] of message.failures) {
          result.failures.set(text, (result.failures.get(text) ?? 0) + n);
        }
        resolve(result);
      };
      this.worker.on('message', onMessage);
      this.worker.once('error', reject);
      this.worker.postMessage({ id, url: target.url, headers: target.headers, total, concurrency });
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}
