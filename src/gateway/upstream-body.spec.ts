import { PassThrough, Readable } from 'node:stream';

import { idleLimited, readAhead } from './upstream-body';

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

describe('readAhead', () => {
  const pieces = (...texts: string[]) => Readable.from(texts.map((text) => Buffer.from(text)));
  const all = async (source: AsyncIterable<Buffer>) => {
    const read: string[] = [];
    for await (const piece of source) read.push(String(piece));
    return read;
  };

  it('gives a body that ends within the limit whole', async () => {
    const read = await readAhead(pieces('ab', 'cd', 'e'), 5);
    expect(read).toEqual({ whole: Buffer.from('abcde') });
    expect(await readAhead(pieces(), 5)).toEqual({ whole: Buffer.alloc(0) });
  });

  it('gives a longer body as every piece, those read ahead first, without holding the rest', async () => {
    const source = new PassThrough();
    source.write('abc');
    source.write('def');
    const read = readAhead(source, 5);
    const ahead = await read;
    expect('rest' in ahead).toBe(true);
    source.end('ghi');
    expect((await all((ahead as { rest: AsyncIterable<Buffer> }).rest)).join('')).toBe('abcdefghi');
  });

  it('rejects before anything is given when the body stalls before its end or the limit', async () => {
    const body = new PassThrough();
    body.write('ab');
    await expect(readAhead(idleLimited(body, 30, stalled), 5)).rejects.toThrow('stalled');
  });
});
