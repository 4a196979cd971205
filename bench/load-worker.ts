import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
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
  /**
   * The last run's successful calls, when it marked its requests (`mark`): each call's number
   * (the value of the `mark` query parameter it carried, from 0) and its latency (ms).
   */
  marked: [seq: number, latencyMs: number][];
}

/**
 * The load client in a thread of its own: a closed loop of GETs on keep-alive sockets, as `runLoad`
 * does, but on another event loop (another core), so that the client's own work (building requests,
 * parsing answers) does not queue behind the app's on the app's thread, nor the app's behind it.
 * Plain JavaScript evaluated in the worker: it needs nothing of the project.
 */
const SOURCE = `
const { parentPort } = require('node:worker_threads');
// This thread's id for the kernel (Linux), so that the main thread can pin it (pinApart).
let tid = null;
try { tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()); } catch {}
parentPort.postMessage({ tid });
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
parentPort.on('message', async ({ id, url, headers, total, concurrency, mark }) => {
  const latencies = new Float64Array(total);
  const seqs = new Float64Array(total);
  let done = 0, next = 0, errors = 0;
  const failures = new Map();
  const cpu = process.threadCpuUsage();
  const worker = async () => {
    while (next < total) {
      const seq = next;
      next += 1;
      const target = mark ? url + (url.includes('?') ? '&' : '?') + mark + '=' + seq : url;
      const start = performance.now();
      try {
        await get(target, headers);
        latencies[done] = performance.now() - start;
        seqs[done++] = seq;
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
  parentPort.postMessage({ id, latencies: latencies.slice(0, done), seqs: seqs.slice(0, done), errors,
    failures: [...failures], wallMs,
    clientCpuMicros: used.user + used.system });
});
`;

export class LoadWorker {
  private readonly worker = new Worker(SOURCE, { eval: true });
  private nextId = 0;
  /** The load thread's kernel thread id (Linux), or null where there is none to read. */
  readonly tid: Promise<number | null> = new Promise((resolve) => {
    this.worker.once('message', (message: { tid: number | null }) => resolve(message.tid));
  });

  /**
   * `total` GETs of `target`, `concurrency` at a time, added to `into` when given. With `mark`, each
   * GET carries its number in that query parameter (`?mark=0`, `1`…), for the server to say what it
   * did with each (`WorkerResult.marked`).
   */
  run(
    target: GetTarget,
    total: number,
    concurrency: number,
    into?: WorkerResult,
    mark?: string,
  ): Promise<WorkerResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (message: {
        id: number;
        latencies: Float64Array;
        seqs: Float64Array;
        errors: number;
        failures: [string, number][];
        wallMs: number;
        clientCpuMicros: number;
      }): void => {
        if (message.id !== id) return;
        this.worker.off('message', onMessage);
        this.worker.off('error', reject);
        const result: WorkerResult = into ?? { ...emptyResult(), clientCpuMicros: 0, marked: [] };
        for (const latency of message.latencies) result.latencies.push(latency);
        result.marked = mark ? Array.from(message.seqs, (seq, i) => [seq, message.latencies[i]]) : [];
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
      this.worker.postMessage({ id, url: target.url, headers: target.headers, total, concurrency, mark });
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

/**
 * Pins this process's main thread (the app, and the fake beside it) and the load client's thread
 * to two different CPUs, as a load generator is kept off the cores of the server it measures: on
 * loopback, each answer wakes the client, and the kernel would otherwise often run it on the app's
 * own CPU, preempting the app in the middle of its write (measured: the gateway's answer `writev`
 * took 46 µs pinned, 115–150 µs not). Callers are on other machines in production. Linux with
 * `taskset` (util-linux) and two CPUs; BENCH_PIN=0 leaves the threads where the kernel puts them.
 * Returns what it did, in words, and how to let the main thread run anywhere again.
 */
export async function pinApart(load: LoadWorker): Promise<{ description: string; unpin: () => void }> {
  const unpinned = (why: string) => ({ description: `not pinned (${why})`, unpin: () => undefined });
  if (process.env.BENCH_PIN === '0') return unpinned('BENCH_PIN=0');
  const tid = await load.tid;
  if (tid === null) return unpinned('no /proc/thread-self: not Linux');
  const taskset = (...args: string[]): string => execFileSync('taskset', args, { encoding: 'utf8' });
  try {
    const allowed = taskset('-c', '-p', String(process.pid)).split(':').pop()!.trim();
    const cpus = cpuList(allowed);
    if (cpus.length < 2) return unpinned(`one CPU allowed: ${allowed}`);
    const [app, client] = cpus;
    taskset('-c', '-p', String(app), String(process.pid));
    taskset('-c', '-p', String(client), String(tid));
    return {
      description: `pinned apart (taskset): the app's thread on CPU ${app}, the load client's on CPU ${client}`,
      // Every thread: those started while pinned (libuv's pool, V8's helpers) took the main one's CPU.
      unpin: () => {
        for (const thread of readdirSync('/proc/self/task')) {
          try {
            taskset('-c', '-p', allowed, thread);
          } catch {
            // a thread that has ended meanwhile
          }
        }
      },
    };
  } catch (error) {
    return unpinned(`taskset: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
}

/** `0-2,5` as [0, 1, 2, 5]. */
function cpuList(text: string): number[] {
  return text
    .trim()
    .split(',')
    .flatMap((part) => {
      const [from, to] = part.split('-').map(Number);
      if (!Number.isInteger(from)) return [];
      return Array.from({ length: (Number.isInteger(to) ? to : from) - from + 1 }, (_, i) => from + i);
    });
}
