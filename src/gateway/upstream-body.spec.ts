import { PassThrough, Readable } from 'node:stream';

import { afterFirstPiece, idleLimited } from './upstream-body';

const stalled = () => new Error('stalled');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idleLimited', () => {
  it('gives every piece of a body that keeps coming', async () => {
    const pieces: string[] = [];
    for await (const piece of idleLimited(Readable.from(['a', 'b', 'c']), 50, stalled)) {
      pieces.push(piece.toString());
    }
    expect(pieces.join('')).toBe('abc');
  });

  it('fails and destroys the body when the server stays silent longer than the limit', async () => {
    const body = new PassThrough();
    body.write('first');
    const read = (async () => {
      for await (const piece of idleLimited(body, 50, stalled)) void piece;
    })();
    await expect(read).rejects.toThrow('stalled');
    expect(body.destroyed).toBe(true);
  });

  it("fails with failed(error) when the body's read fails (the server's connection reset)", async () => {
    const body = new PassThrough();
    const read = (async () => {
      for await (const piece of idleLimited(body, 1000, stalled, (e) => new Error(`broke: ${String(e)}`))) {
        void piece;
      }
    })();
    body.destroy(new Error('ECONNRESET'));
    await expect(read).rejects.toThrow('broke: Error: ECONNRESET');
  });

  it('does not count the time the consumer takes: a slow caller is not a stalled server', async () => {
    const body = Readable.from(['a', 'b', 'c'].map((s) => Buffer.from(s)));
    const pieces: string[] = [];
    for await (const piece of idleLimited(body, 30, stalled)) {
      pieces.push(piece.toString());
      await sleep(80); // longer than the limit, between reads
    }
    expect(pieces.join('')).toBe('abc');
  });

  it('destroys the body when the consumer stops early (the caller left)', async () => {
    const body = new PassThrough();
    body.write('first');
    for await (const piece of idleLimited(body, 1000, stalled)) {
      expect(piece.toString()).toBe('first');
      break;
    }
    expect(body.destroyed).toBe(true);
  });
});

describe('afterFirstPiece', () => {
  it('waits for the first piece, then gives it and the rest', async () => {
    const all: string[] = [];
    for await (const piece of await afterFirstPiece(Readable.from(['x', 'y']))) all.push(String(piece));
    expect(all).toEqual(['x', 'y']);
  });

  it('rejects before anything is given when the first piece never comes', async () => {
    const body = new PassThrough();
    await expect(afterFirstPiece(idleLimited(body, 30, stalled))).rejects.toThrow('stalled');
  });
});
