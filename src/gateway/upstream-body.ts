import type { Readable } from 'node:stream';

/**
 * The pieces of the FHIR server's answer body, failing with `stalled()` when the next piece takes
 * longer than `idleMs` to come (headers sent, then silence). Only the wait for the server counts:
 * the next piece is asked for when the gateway's caller has taken the previous one, so a caller
 * that reads slowly never looks like a stalled server. Whenever the pieces stop before the end
 * (stalled, failed, or the consumer stopped), the body is destroyed, which aborts the call to the
 * server (its socket is closed). A read that fails (the server's connection reset) fails with
 * `failed(error)`.
 */
export async function* idleLimited(
  body: Readable,
  idleMs: number,
  stalled: () => Error,
  failed: (error: unknown) => Error = (error) => error as Error,
): AsyncGenerator<Buffer, void, undefined> {
  const pieces = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let ended = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const silence = new Promise<'silent'>((resolve) => {
        timer = setTimeout(() => resolve('silent'), idleMs);
      });
      // The pending read, if the server stays silent, fails once the body is destroyed below:
      // race() has already subscribed to it, so that is no unhandled rejection.
      const next = await Promise.race([pieces.next(), silence])
        .catch((error: unknown) => {
          throw failed(error);
        })
        .finally(() => clearTimeout(timer));
      if (next === 'silent') throw stalled();
      if (next.done) {
        ended = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!ended) body.destroy();
  }
}

/** What readAhead() read: the whole body, or (it was longer) every piece of it, those read included. */
export type ReadAhead = { whole: Buffer } | { rest: AsyncIterable<Buffer> };

/**
 * Reads `source` until it ends or more than `limit` bytes have come (rejected as `source` fails).
 * The gateway sends nothing before this: a small answer goes out whole, with its length, in one
 * write; a server silent or broken before its end or its first `limit` bytes is answered with a
 * whole OperationOutcome (504, 502) instead of a cut answer.
 */
export async function readAhead(source: AsyncIterable<Buffer>, limit: number): Promise<ReadAhead> {
  const iterator = source[Symbol.asyncIterator]();
  const pieces: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { whole: pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, size) };
    pieces.push(next.value);
    size += next.value.length;
    if (size > limit) {
      return {
        rest: (async function* () {
          yield* pieces;
          yield* { [Symbol.asyncIterator]: () => iterator };
        })(),
      };
    }
  }
}
