import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const MB = 1024 * 1024;

/** What streaming one answer through the app cost. */
export interface StreamMeasurement {
  status: number;
  /** Bytes of the answer's body read. */
  received: number;
  /** The most bytes the producer had written that the reader had not got: what the pipeline held. */
  peakInFlight: number;
  /** The largest growth of this process's RSS over the baseline while reading, in bytes. */
  rssGrowth: number;
}

/**
 * GETs `url` over real HTTP (the app must listen: listenOnLoopback) and reads the answer piece by
 * piece, measuring what the pipeline holds. `produced` is the upstream's count of bytes written
 * (the fake's large search or Bulk Data file), counted from the start of this call; `onChunk` sees
 * each piece as it arrives.
 *
 * Memory that is garbage is not memory held: a full collection runs before each sample (node's
 * --expose-gc, set for this process), so what grows is what the pipeline keeps. Samples come every
 * 50 ms, or less often when collecting is slow (a large heap late in the suite, a busy machine): the
 * pause after each is at least three times what it took, so collecting never takes more than a
 * quarter of the time and the transfer goes on between samples.
 *
 * The URL is read once, unmeasured, before: a server that has never streamed an answer is measured
 * warm, as it is after its first. Cold code under a full collection every 50 ms stays slow and
 * compiling it takes memory of its own (a 30 MB Bundle through the gateway: 10 s and +38 MB RSS
 * cold, 1 s and a few MB warm), which says nothing of what the pipeline holds.
 */
export async function streamAndMeasure(options: {
  url: string;
  headers?: Record<string, string>;
  produced: () => number;
  onChunk?: (chunk: Buffer) => void;
}): Promise<StreamMeasurement> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Once unmeasured first: see above.
  await read(options.url, options.headers ?? {}, () => undefined);
  gc();
  const baseline = process.memoryUsage().rss;
  const producedBefore = options.produced();
  let peakRss = baseline;
  let received = 0;
  let peakInFlight = 0;
  let sampler: NodeJS.Timeout | undefined;
  const sample = (): void => {
    const started = performance.now();
    gc();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    sampler = setTimeout(sample, Math.max(50, 3 * (performance.now() - started)));
  };
  sampler = setTimeout(sample, 50);
  try {
    const status = await read(options.url, options.headers ?? {}, (chunk) => {
      received += chunk.length;
      peakInFlight = Math.max(peakInFlight, options.produced() - producedBefore - received);
      options.onChunk?.(chunk);
    });
    return { status, received, peakInFlight, rssGrowth: peakRss - baseline };
  } finally {
    clearTimeout(sampler);
  }
}

/** GETs `url`, giving each piece of the body to `onChunk`; resolves with the status at its end. */
function read(
  url: string,
  headers: Record<string, string>,
  onChunk: (chunk: Buffer) => void,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      res.on('data', onChunk);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Counts the occurrences of `needle` in a stream fed piece by piece, including one cut across two
 * pieces (the end of the last piece with the start of this one).
 */
export function occurrences(needle: Buffer): { feed(chunk: Buffer): void; readonly count: number } {
  let count = 0;
  let tail = Buffer.alloc(0);
  const within = (haystack: Buffer) => {
    let n = 0;
    for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) n++;
    return n;
  };
  return {
    feed(chunk) {
      count += within(chunk) + within(Buffer.concat([tail, chunk.subarray(0, needle.length - 1)]));
      tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (needle.length - 1))));
    },
    get count() {
      return count;
    },
  };
}
