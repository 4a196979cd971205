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

/**
 * Waits for the first piece of `source` (or its end, or its failure: rejected then) and gives back
 * every piece, that one included. The gateway sends its headers only after this, so a server
 * silent from the start is answered with a whole OperationOutcome (504) instead of a cut answer.
 */
export async function afterFirstPiece(source: AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer>> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* { [Symbol.asyncIterator]: () => iterator };
  })();
}
